"""BK-6: free cancellation until 16:00 of the working day before the visit, where "working
day" follows the calendar the region imported for a year ``chinesecalendar`` does not know
yet (the official schedule comes out late in the year before, docs/calendar.md)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from onetrip.notify import visit
from onetrip.org import calendar as org_calendar
from onetrip.org.rules import OverrideKind
from onetrip.scheduling import booking, page_booking
from onetrip.scheduling.errors import CancelDeadlinePassed
from onetrip.scheduling.models import Slot
from onetrip.scheduling.rules import Channel
from tests.scheduling.conftest import Clinic, local

NEW_YEAR = date(2027, 1, 1)  # a Friday, in a year the library has no data for
MONDAY = date(2027, 1, 4)


def new_year_visit(db: Session, clinic: Clinic) -> tuple[int, object]:
    org_calendar.set_override(db, day=NEW_YEAR, kind=OverrideKind.holiday, name="元旦",
                              region_id=clinic.hospital.region_id)
    session = clinic.session(db, day=MONDAY)
    p, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                        schedule_id=session.id, now=local(MONDAY - timedelta(days=6), 10))
    return appt.id, pp


def test_bk6_cancel_deadline_skips_a_holiday_the_region_imported(
        db: Session, clinic: Clinic) -> None:
    appt_id, pp = new_year_visit(db, clinic)
    with pytest.raises(CancelDeadlinePassed):
        booking.cancel(db, principal=pp, appointment_id=appt_id, now=local(NEW_YEAR, 10))


def test_bk6_pages_and_reminders_state_the_same_deadline(db: Session, clinic: Clinic) -> None:
    appt_id, _pp = new_year_visit(db, clinic)
    appt = booking.access_appointment(db, clinic.window, appt_id)
    expected = local(date(2026, 12, 31), 16)
    assert page_booking.terms_of(db, db.get_one(Slot, appt.slot_id)).cancel_deadline == expected
    assert visit.sessions(db, [appt.schedule_id])[appt.schedule_id].cancel_deadline == expected


def test_bk6_an_adjusted_working_saturday_is_the_working_day_before(
        db: Session, clinic: Clinic) -> None:
    saturday = date(2027, 2, 20)
    org_calendar.set_override(db, day=saturday, kind=OverrideKind.workday, name="春节调休",
                              region_id=clinic.hospital.region_id)
    session = clinic.session(db, day=saturday + timedelta(days=2))
    p, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                        schedule_id=session.id, now=local(saturday - timedelta(days=3), 10))
    done = booking.cancel(db, principal=pp, appointment_id=appt.id, now=local(saturday, 10))
    assert done.status == "cancelled" and done.penalty_event is None
