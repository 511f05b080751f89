"""Time-driven housekeeping, safe to run often and from several workers at once.

Pool openings and returns need no job: they are computed from each slot's timers at the
moment of every query. What a clock must still do: end run-out holds and offers, mark
no-shows after a session, and forget old idempotency answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onetrip.scheduling import fairness, idempotency, queue, service, waitlist
from onetrip.scheduling.models import Appointment, RebookingOffer


@dataclass(frozen=True)
class SweepReport:
    holds_expired: int
    waitlist_offers_expired: int
    rebooking_offers_expired: int
    noshows: int


def sweep(db: Session, *, now: datetime) -> SweepReport:
    """One pass; running it twice at the same instant changes nothing more."""
    holds = db.execute(update(Appointment).where(
        service.status_among_active(Appointment.status, "held"),
        Appointment.hold_expires_at <= now)
                       .values(status="expired").returning(Appointment.slot_id),
                       execution_options={"synchronize_session": False}).scalars().all()
    offers = list(db.scalars(select(RebookingOffer).where(
        RebookingOffer.status == "open", RebookingOffer.expires_at <= now)))
    for offer in offers:
        offer.status = "expired"
    freed = service.free_held(
        db, [*holds, *(o.held_slot_id for o in offers if o.held_slot_id)], ran_out_by=now)
    # BK-6: a slot freed by the clock goes to the session's waitlist first, as a cancelled one.
    waitlist.offer_freed_slots(db, slot_ids=freed, now=now)
    waitlisted = waitlist.expire_offers(db, now=now)
    noshows = queue.mark_noshows(db, now=now)
    idempotency.purge(db, before=now - timedelta(hours=24))
    fairness.forget(db, before=now - timedelta(hours=1))
    db.flush()
    return SweepReport(len(holds), waitlisted, len(offers), noshows)
