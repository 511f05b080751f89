"""BK-8 at the door: every booking request is counted against the rate limits, and in the
seconds after a pool opens it is served by a random draw, not by arrival (``fairness``).

An API booking (``POST /api/v1/appointments``, ``/holds``) that arrives in an opening's fair
window leaves its whole request on a ticket with its draw (one draw per patient: more
requests buy no more chances). Once the window has closed, the first of them to get the
draw's lock books the opening's tickets lowest draw first, a batch at a time, and each
ticket keeps its answer: the order is the draw's, whichever server process or connection a
request came through. A request in the LATE seconds after the window joins the draw behind
it, so firing just after the window gains nothing either. A page or FHIR booking (booked in
its own request's transaction) waits instead for its turn: one short step after the draw
before it.

Outside those few seconds of the day nothing here touches the database: each process reads
the clocks at which pools open once a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.deps import Now, Units, secret_from
from onetrip.identity import service as identity_service
from onetrip.scheduling import fairness, groupcommit, service
from onetrip.scheduling.models import OpeningTicket
from onetrip.scheduling.rules import Channel
from onetrip.scheduling.schemas import BookingCreate


def attempt_keys(request: Request) -> tuple[tuple[str, int], ...]:
    """The keys a booking attempt counts under, with their limits per minute: the account
    (every sign-in of one account together) and the client address."""
    settings = get_settings()
    secret = secret_from(request) or "anonymous"
    account = fairness.account_key(secret)
    address = "address:" + (request.client.host if request.client else "-")
    return ((account, settings.booking_rate_per_account),
            (address, settings.booking_rate_per_address))


@dataclass
class _Clocks:
    """This process's copy of the opening clocks, and their fair windows by local day."""

    read_at: float = -1e9
    generation: int = -1
    clocks: tuple[tuple[time, float], ...] = ()
    windows: dict[date, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def rush(self, now: datetime) -> bool:
        tz = get_settings().tz
        day = now.astimezone(tz).date()
        if day not in self.windows:  # with the day before's: a window may cross midnight
            self.windows[day] = [*fairness.opening_windows(list(self.clocks), day),
                                 *fairness.opening_windows(list(self.clocks),
                                                           day - timedelta(days=1))]
        return any(start <= now < end for start, end in self.windows[day])


_clocks = _Clocks()
_reading = asyncio.Lock()


async def _rush(units: Units, now: datetime) -> bool:
    """Whether ``now`` may fall in some pool's fair window. The clocks are read again after
    CLOCKS_TTL or a policy change in this process, by one request while the others wait."""
    global _clocks

    def fresh() -> bool:
        return (_clocks.generation == service.policy_generation()
                and monotonic() - _clocks.read_at <= fairness.CLOCKS_TTL)

    if not fresh():
        async with _reading:
            if not fresh():
                generation = service.policy_generation()
                found = await units(fairness.opening_clocks, write=False)
                _clocks = _Clocks(monotonic(), generation, tuple(found))
    return _clocks.rush(now)


#: How long a request of the draw waits for its answer before it gives up (500).
DRAW_PATIENCE = 60.0


def _until(moment: datetime, now: datetime) -> float:
    """Seconds to wait for ``moment``, by the wall clock: a request goes at its moment
    however long it took to get its draw written (a burst of fast clients waits longest
    for that, and a wait counted from then would let it go last). A test's fixed clock
    never makes a request wait longer than from its ``now``."""
    return max(0.0, min(moment - utcnow(), moment - now).total_seconds())


async def drawn(command: groupcommit.Command, units: Units) -> groupcommit.Answer | None:
    """An API booking in an opening's fair window: its answer once the draw is booked;
    None outside every fair window (the caller books it the usual way)."""
    now = command.now
    if not await _rush(units, now):
        return None
    arrived = monotonic()

    def draw(db: Session) -> tuple[fairness.Opening, int] | None:
        opening = fairness.opening_for(db, schedule_id=command.schedule_id,
                                       slot_id=command.slot_id, channel=command.channel,
                                       now=now)
        if opening is None:
            return None
        for key, limit in command.rate_keys:
            fairness.count_attempt(db, key, now, limit)
        principal = identity_service.authenticate_token(
            db, command.secret or "", request_id=command.request_id,
            client_ip=command.client_ip)
        kept = groupcommit.Command(
            patient_id=command.patient_id, channel=command.channel, now=now,
            slot_id=command.slot_id, schedule_id=command.schedule_id, hold=command.hold,
            principal=principal, idempotency_key=command.idempotency_key)
        return opening, fairness.take_ticket(db, opening, now, command=kept.to_json()).id

    ticket = await units(draw)
    if ticket is None:
        return None
    opening, ticket_id = ticket
    await asyncio.sleep(_until(opening.closes_at + fairness.GRACE, now))
    give_up = monotonic() + DRAW_PATIENCE

    def book_some(db: Session) -> tuple[bool, groupcommit.Answer | None]:
        # The draw is booked with the clock advanced by the time this request waited.
        booked = groupcommit.book_drawn(
            db, opening.key, now=now + timedelta(seconds=monotonic() - arrived))
        mine = db.get_one(OpeningTicket, ticket_id)
        return booked, groupcommit.Answer.kept(mine) if mine.status_code else None

    while monotonic() < give_up:
        booked, answer = await units(book_some)
        if answer is not None:
            return answer
        if not booked:  # another request is booking the draw: look again shortly
            await asyncio.sleep(0.02)
    return groupcommit.INTERNAL


async def admit_booking(request: Request, now: Any, units: Units, *, schedule_id: int | None,
                        slot_id: int | None, channel: Channel) -> None:
    """A page or FHIR booking: count the attempt per account and per address; in the
    seconds after a pool opens, wait for this request's turn in the draw."""
    rush = await _rush(units, now)

    def count_and_draw(db: Session) -> tuple[fairness.Opening, int] | None:
        for key, limit in attempt_keys(request):
            fairness.count_attempt(db, key, now, limit)
        opening = fairness.opening_for(db, schedule_id=schedule_id, slot_id=slot_id,
                                       channel=channel, now=now) if rush else None
        if opening is None:
            return None
        return opening, fairness.take_ticket(db, opening, now).id

    ticket = await units(count_and_draw)
    if ticket is None:
        return
    opening, ticket_id = ticket
    wake = opening.closes_at + fairness.GRACE
    await asyncio.sleep(_until(wake, now))
    ahead = await units(
        lambda db: fairness.rank(db, db.get_one(OpeningTicket, ticket_id)), write=False)
    await asyncio.sleep(_until(wake + ahead * fairness.STEP, now))


async def booking_gate(request: Request, body: BookingCreate, now: Now, units: Units) -> None:
    await admit_booking(request, now, units, schedule_id=body.schedule_id, slot_id=body.slot_id,
                        channel=body.channel)


BookingGate = Annotated[None, Depends(booking_gate)]
