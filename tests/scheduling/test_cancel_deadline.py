"""BK-6: free cancellation until 16:00 of the working day before the visit, where "working
day" follows the calendar the region imported for a year ``chinesecalendar`` does not know
yet (the official schedule comes out late in the year before, docs/calendar.md)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.notify import visit
from onetrip.org import calendar as org_calendar
from onetrip.org.rules import OverrideKind
from onetrip.scheduling import booking, page_booking
from onetrip.scheduling.errors import CancelDeadlinePassed, NotCancellable
from onetrip.scheduling.models import Slot
from onetrip.scheduling.rules import Channel
from tests.factories import auth, make_token
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


def test_bk6_a_visit_whose_session_is_over_cannot_be_cancelled(
        db: Session, clinic: Clinic) -> None:
    """Once the session has run, the patient was seen or is a no-show: a staff cancellation
    then would turn a no-show into a refund and wipe it from the penalty history."""
    p, _pp = clinic.patient(db)
    appt = clinic.book(db, p.id)
    after = clinic.schedule.end_at + timedelta(minutes=20)
    with pytest.raises(NotCancellable) as refused:
        booking.cancel(db, principal=clinic.window, appointment_id=appt.id, now=after)
    assert refused.value.detail == {"reason": "session_over",
                                    "end_at": clinic.schedule.end_at.isoformat()}
    db.refresh(appt)
    assert appt.status == "booked" and appt.penalty_event is None
    # During the session the window may still cancel it (a same-day refund).
    during = clinic.schedule.end_at - timedelta(minutes=1)
    assert booking.cancel(db, principal=clinic.window, appointment_id=appt.id,
                          now=during).penalty_event == "same_day_refund"


def test_bk8_a_kiosk_cannot_cancel_or_read_an_appointment_by_its_number(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    """A kiosk acts for the patient whose card it reads, never for an appointment number."""
    p, _pp = clinic.patient(db)
    appt = clinic.book(db, p.id)
    kiosk = auth(make_token(db, Role.kiosk, clinic.hospital))
    db.commit()
    r = client.post(f"/api/v1/appointments/{appt.id}/cancel", headers=kiosk)
    assert r.status_code == 403, r.text
    r = client.post(f"/api/v1/appointments/{appt.id}/confirm", headers=kiosk)
    assert r.status_code == 403, r.text
    for read in (f"/api/v1/appointments/{appt.id}", f"/api/v1/appointments/{appt.id}/queue",
                 f"/fhir/Appointment/{appt.id}"):
        r = client.get(read, headers=kiosk)
        assert r.status_code == 403 and str(p.id) not in r.text, (read, r.text)
    db.refresh(appt)
    assert appt.status == "booked"
