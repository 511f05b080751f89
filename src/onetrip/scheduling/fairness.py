"""Fair opening and rate limits: what stops fast clients and scalpers' bots (BK-8).

When a pool opens at a fixed time (online at 07:00 seven days ahead, referral ten days
ahead), every booking request that arrives in the first seconds gets a ticket with a random
draw. Once the window closes, requests go on in the order of their draws, a short step
apart: arriving first buys nothing. Attempts are also counted per account and per client
address; past the limit a request is refused before it reaches the booking engine.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Integer, String, Table, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.errors import OnetripError
from onetrip.identity import auth as identity_auth
from onetrip.org.models import Hospital
from onetrip.scheduling import service
from onetrip.scheduling.models import BookingPolicy, OpeningTicket, RateCounter, Schedule, Slot
from onetrip.scheduling.rules import (
    CHANNEL_POOLS,
    Channel,
    Pool,
    PoolPolicy,
    at_local,
)

#: Wait after the window closes before ranking, so tickets written at its last moment count.
GRACE = timedelta(milliseconds=300)
#: Requests this long after the window join the draw, behind it, in order of arrival.
LATE = timedelta(seconds=2)
_LATE_DRAWS = 1 << 62  # above every random draw (62 bits)
#: The step between consecutive draws once the window has closed.
STEP = timedelta(milliseconds=3)


class TooManyRequests(OnetripError):
    code = "rate_limited"
    http_status = 429
    message = "操作过于频繁，请稍后再试"


@dataclass(frozen=True)
class Opening:
    key: str
    closes_at: datetime


#: Pools that open at a fixed time of day (07:00 seven or ten days ahead, on the day for the
#: window); the clinic pool is open from the moment its session is made, with no rush.
_RUSHED = frozenset({Pool.online, Pool.referral, Pool.priority, Pool.window})
#: How long a process trusts its copy of the opening clocks: a policy change made in another
#: process reaches this one's fair-window check within this time (one small read a second).
CLOCKS_TTL = 1.0


def opening_clocks(db: Session) -> list[tuple[time, float]]:
    """Every local time of day at which some hospital's pools open, with its fair window."""
    stored = [PoolPolicy.model_validate(pools)
              for pools in db.scalars(select(BookingPolicy.pools))]
    return sorted({(clock, p.fair_window_seconds) for p in [PoolPolicy(), *stored]
                   if p.fair_window_seconds > 0
                   for clock in (p.online_release_time, p.same_day_open_time)})


def opening_windows(clocks: list[tuple[time, float]], day: date,
                    ) -> list[tuple[datetime, datetime]]:
    """When a local day's bookings may need the draw: from each opening clock, for its fair
    window and the LATE seconds after. Outside these few seconds of the day none does."""
    tz = get_settings().tz
    return [(at_local(day, clock, tz),
             at_local(day, clock, tz) + timedelta(seconds=seconds) + LATE)
            for clock, seconds in clocks]


def opening_for(db: Session, *, schedule_id: int | None, slot_id: int | None,
                channel: Channel, now: datetime) -> Opening | None:
    """The pool opening this request falls into the fair window of, if any, or joins late:
    a request in the LATE seconds after the window goes into the draw behind it (else a bot
    firing just after the window would be served before every drawn request)."""
    if slot_id is not None:
        schedule_id = db.scalar(select(Slot.schedule_id).where(Slot.id == slot_id))
    schedule = db.get(Schedule, schedule_id) if schedule_id is not None else None
    if schedule is None:
        return None
    policy, _ = service.policy_for(db, schedule.hospital_id)
    if policy.fair_window_seconds <= 0:
        return None
    window = timedelta(seconds=policy.fair_window_seconds)
    pools = CHANNEL_POOLS[channel] & _RUSHED
    # The slots' own timers, not the policy's: a session generated before the policy moved
    # its opening time keeps opening when its slots say (docs/booking.md). A slot opens into
    # its pool at its release, and into its return pool (referral into online) at its return.
    t = cast(Table, Slot.__table__).c
    timers = db.execute(select(t.pool, t.release_at, t.return_pool, t.return_at)
                        .where(t.schedule_id == schedule.id).distinct()).all()
    opens = sorted({(Pool(r.pool), r.release_at) for r in timers}
                   | {(Pool(r.return_pool), r.return_at) for r in timers
                      if r.return_pool and r.return_at is not None})
    for pool, release in opens:
        if pool in pools and release <= now < release + window + LATE:
            hospital = db.get_one(Hospital, schedule.hospital_id)
            at = release.astimezone(get_settings().tz).isoformat()
            return Opening(f"{hospital.code}:{pool.value}:{at}", release + window)
    return None


def draw_of(opening: Opening, now: datetime, patient_id: int | None = None) -> int:
    """A ticket's draw: random, the same for every request of one patient in one opening
    (more requests buy no more chances: a keyed hash of the opening and the patient,
    unpredictable without the server's secret key), and behind every drawn one, in order
    of arrival, for a request that came after the window closed."""
    if now >= opening.closes_at:
        return _LATE_DRAWS + int((now - opening.closes_at) / timedelta(microseconds=1))
    if patient_id is None:
        return secrets.randbits(62)
    digest = hmac.new(get_settings().secret_key.encode(),
                      f"draw:{opening.key}:{patient_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def take_ticket(db: Session, opening: Opening, now: datetime,
                command: dict[str, Any] | None = None) -> OpeningTicket:
    """A ticket with its draw; an API booking leaves its request on it (``command``)."""
    ticket = OpeningTicket(
        opening=opening.key, created_at=now, command=command,
        draw=draw_of(opening, now, command["patient_id"] if command else None))
    db.add(ticket)
    db.flush()
    return ticket


def rank(db: Session, ticket: OpeningTicket) -> int:
    """How many tickets of the same opening drew lower."""
    return db.scalar(select(func.count()).select_from(OpeningTicket).where(
        OpeningTicket.opening == ticket.opening, OpeningTicket.draw < ticket.draw)) or 0


def count_attempt(db: Session, key: str, now: datetime, limit: int) -> None:
    """Count one attempt in this minute's window; raises TooManyRequests past ``limit``."""
    counted = counting_keys(db, {key})[key]
    if count_attempts(db, Counter({counted: 1}), now)[counted] > limit:
        raise TooManyRequests(detail={"limit_per_minute": limit})


SECRET_KEY = "secret:"


def account_key(secret: str) -> str:
    """BK-8: the rate key of the account a request's secret signs in (never the secret):
    counted under whoever holds it, however many times they signed in."""
    return SECRET_KEY + identity_auth.secret_key(secret)


def counting_keys(db: Session, keys: set[str]) -> dict[str, str]:
    """The key each rate key is counted under: an account's, its holder's (every session and
    token of one account or staff member together); any other, itself."""
    named = {k: k.removeprefix(SECRET_KEY) for k in keys if k.startswith(SECRET_KEY)}
    who = identity_auth.holders(db, set(named.values())) if named else {}
    return {k: ("holder:" + who[named[k]] if named.get(k) in who else k)[:120] for k in keys}


def count_attempts(db: Session, attempts: Counter[str], now: datetime) -> dict[str, int]:
    """Add attempts per counting key (``counting_keys``) to this minute's windows, all keys
    with one upsert (a batch of requests); the counts afterwards, by key."""
    window = now.replace(second=0, microsecond=0)
    keys = sorted(attempts)  # in key order: two batches never wait on each other
    rows = db.connection().execute(_upsert(db.get_bind().dialect.name), {
        "keys": keys, "window": window,
        "counts": [attempts[k] for k in keys]} if db.get_bind().dialect.name == "postgresql"
        else [{"key": k, "window_start": window, "count": attempts[k]} for k in keys])
    return dict(rows.all())


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> Any:
    """The counters' upsert, built once: PostgreSQL takes every key of a batch in one
    statement (the keys and counts as arrays); SQLite one key at a time in executemany."""
    table = cast(Table, RateCounter.__table__)
    if dialect == "postgresql":
        given = select(func.unnest(bindparam("keys", type_=ARRAY(String))).label("key"),
                       bindparam("window", type_=table.c.window_start.type).label("window"),
                       func.unnest(bindparam("counts", type_=ARRAY(Integer))).label("n"))
        stmt: Any = postgresql.insert(table).from_select(["key", "window_start", "count"],
                                                         given)
    else:
        stmt = sqlite.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"count": table.c.count + stmt.excluded.count}).returning(table.c.key,
                                                                      table.c.count)


def forget(db: Session, *, before: datetime) -> None:
    """Drop tickets and counters older than ``before`` (the sweeper calls this)."""
    db.execute(delete(OpeningTicket).where(OpeningTicket.created_at < before))
    db.execute(delete(RateCounter).where(RateCounter.window_start < before))
