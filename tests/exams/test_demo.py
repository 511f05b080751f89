"""The demo's waiting exam orders are ones a clinic would send: adults only, and the
gynaecological and early-pregnancy ultrasounds for women of child-bearing age."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.exams.models import ExamOrder
from onetrip.exams.rules import age_on
from onetrip.identity.models import Patient

WOMEN_ONLY = {"us_gyn", "us_early_pregnancy"}


def test_the_demo_orders_suit_their_patients(db: Session) -> None:
    rows = db.execute(select(ExamOrder, Patient).join(Patient, ExamOrder.patient_id == Patient.id)
                      .where(ExamOrder.ordered_by.like("doctor:demo:%"))).all()
    assert len({p.id for _o, p in rows}) >= 10
    for order, patient in rows:
        age = age_on(patient.birth_date, order.ordered_at.date())
        assert 18 <= age <= 85, (order.exam_code, age)
        if order.exam_code in WOMEN_ONLY:
            assert patient.gender == "female" and age <= 49, (order.exam_code, age)
