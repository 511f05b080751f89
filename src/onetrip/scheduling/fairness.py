"""Fair opening and rate limits: what stops fast clients and scalpers' bots (BK-8).

When a pool opens at a fixed time (online at 07:00 seven days ahead, referral ten days
ahead), every booking request that arrives in the first seconds gets a ticket with a random
draw. Once the window closes, requests go on in the order of their draws, a short step
apart: arriving first buys nothing. Attempts are also counted per account and per client
address; past the limit a request is refused before it reaches the booking engine.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.errors import OnetripError
from onetrip.org.models import Hospital
from onetrip.scheduling import service
from onetrip.scheduling.models import OpeningTicket, RateCounter, Schedule, Slot
from onetrip.scheduling.rules import CHANNEL_POOLS, Channel, in_opening_rush, pool_timer

#: Wait after the window closes before ranking, so tickets written at its last moment count.
GRACE = timedelta(milliseconds=300)
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


def opening_for(db: Session, *, schedule_id: int | None, slot_id: int | None,
                channel: Channel, now: datetime) -> Opening | None:
    """The pool opening this request falls into the fair window of, if any."""
    if slot_id is not None:
        schedule_id = db.scalar(select(Slot.schedule_id).where(Slot.id == slot_id))
    schedule = db.get(Schedule, schedule_id) if schedule_id is not None else None
    if schedule is None:
        return None
    policy, _ = service.policy_for(db, schedule.hospital_id)
    if policy.fair_window_seconds <= 0:
        return None
    tz = get_settings().tz
    for pool in sorted(CHANNEL_POOLS[channel]):
        release = pool_timer(pool, schedule.day, policy, tz, created_at=now).release_at
        if in_opening_rush(release, now, policy.fair_window_seconds):
            hospital = db.get_one(Hospital, schedule.hospital_id)
            return Opening(f"{hospital.code}:{pool.value}:{release.isoformat()}",
                           release + timedelta(seconds=policy.fair_window_seconds))
    return None


def take_ticket(db: Session, opening: Opening, now: datetime) -> OpeningTicket:
    ticket = OpeningTicket(opening=opening.key, draw=secrets.randbits(62), created_at=now)
    db.add(ticket)
    db.flush()
    return ticket


def rank(db: Session, ticket: OpeningTicket) -> int:
    """How many tickets of the same opening drew lower."""
    return db.scalar(select(func.count()).select_from(OpeningTicket).where(
        OpeningTicket.opening == ticket.opening, OpeningTicket.draw < ticket.draw)) or 0


def count_attempt(db: Session, key: str, now: datetime, limit: int) -> None:
    """Count one attempt in this minute's window; raises TooManyRequests past ``limit``."""
    window = now.replace(second=0, microsecond=0)
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateCounter).values(key=key[:120], window_start=window, count=1)
    stmt = stmt.on_conflict_do_update(index_elements=["key", "window_start"],
                                      set_={"count": RateCounter.count + 1})
    count = db.execute(stmt.returning(RateCounter.count)).scalar_one()
    if count > limit:
        raise TooManyRequests(detail={"limit_per_minute": limit})


def forget(db: Session, *, before: datetime) -> None:
    """Drop tickets and counters older than ``before`` (the sweeper calls this)."""
    db.execute(delete(OpeningTicket).where(OpeningTicket.created_at < before))
    db.execute(delete(RateCounter).where(RateCounter.window_start < before))
