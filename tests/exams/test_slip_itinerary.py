"""EX-2, RM-1: the paper slip of a visit lists the patient's exams of that day in order."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.exams import booking as exam_booking
from onetrip.exams import service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.notify.slip import _blocks, render_pdf, slip_for
from onetrip.org.models import Department, Hospital
from onetrip.scheduling import booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.exams.test_service import first_free, order
from tests.factories import make_patient


def test_ex2_the_visit_slip_prints_the_days_exams_before_the_preparation(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p = make_patient(db)
    ecg = order(db, doctor, hospital, p, "ecg", now)
    slot = first_free(db, hospital, "ecg", now)
    exam_booking.book_single(db, principal=centre, order_id=ecg.id, slot_id=slot.slot_id,
                             now=now)
    day = now.date() + timedelta(days=1)  # the centre books the evening before
    dept = db.scalars(select(Department).where(Department.hospital_id == hospital.id)).first()
    assert dept is not None
    session = scheduling_service.create_schedule(
        db, hospital=hospital, department=dept, day=day, session=SessionOfDay.pm,
        capacity=5, now=now)
    window = Principal(role=Role.window, hospital_id=hospital.id, label="tests")
    appt = booking.book(db, principal=window, patient_id=p.id, channel=Channel.window,
                        now=now, schedule_id=session.id)
    slip = slip_for(db, appt, now=now)
    assert slip.exams == service.itinerary_lines(db, patient_id=p.id, day=day)
    assert len(slip.exams) == 1 and "心电图" in slip.exams[0]
    texts = [text for text, _size, _align in _blocks(slip)]
    exams_at = texts.index("【当日检查】（按时间顺序，一次跑完）")
    assert "心电图" in texts[exams_at + 1] and texts.index("【就诊准备】") > exams_at
    assert render_pdf(slip).startswith(b"%PDF")
