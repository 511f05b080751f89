"""BK-11: the estimated wait a checked-in patient sees counts the time until the session
begins: checked in at 07:30 for an 08:00 clinic, the first in line waits 30 minutes, not 0."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from onetrip.scheduling import booking, queue
from onetrip.scheduling.rules import Channel, estimated_wait
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def test_bk11_wait_before_the_session_counts_until_it_begins() -> None:
    start = local(DAY, 8)
    assert estimated_wait(0, 6, now=local(DAY, 7, 30), starts_at=start) == timedelta(minutes=30)
    assert estimated_wait(2, 6, now=local(DAY, 7, 30), starts_at=start) == timedelta(minutes=42)
    assert estimated_wait(2, 6, now=local(DAY, 8, 20), starts_at=start) == timedelta(minutes=12)
    assert estimated_wait(2, 6) == timedelta(minutes=12)


def test_bk11_a_patient_checked_in_early_sees_the_wait_until_the_doctor_begins(
        db: Session, clinic: Clinic) -> None:
    p, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    queue.check_in(db, principal=pp, appointment_id=appt.id, now=local(DAY, 7, 15))
    entry = queue.position_of(db, appointment=appt, now=local(DAY, 7, 20))
    assert entry is not None and entry.position == 0
    assert entry.wait == timedelta(minutes=40)


def test_bk11_a_patient_early_for_a_late_slot_waits_at_least_until_it(
        db: Session, clinic: Clinic) -> None:
    """Nobody else has checked in yet, but the earlier slots' patients will be called before
    them as they come: the wait is never shorter than the time until their own slot."""
    p, pp = clinic.patient(db)
    booking.book(db, principal=clinic.window, patient_id=clinic.patient(db)[0].id,
                 channel=Channel.window, schedule_id=clinic.schedule.id, now=OPEN)
    late_slot = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                             schedule_id=clinic.schedule.id, now=OPEN)
    assert late_slot.start_at == local(DAY, 8, 6)
    queue.check_in(db, principal=pp, appointment_id=late_slot.id, now=local(DAY, 7, 40))
    entry = queue.position_of(db, appointment=late_slot, now=local(DAY, 7, 45))
    assert entry is not None and entry.position == 0
    assert entry.wait == timedelta(minutes=21)  # until 08:06, not until 08:00
