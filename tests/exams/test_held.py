"""A patient's exams already booked (at a kiosk, say) stay as they are, and what is planned
after them keeps every rule with them and joins their day where it can (EX-2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from onetrip.exams import booking, planner, service, validate
from onetrip.exams.rules import Itinerary, PatientRequest, Visit
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from tests.exams.test_service import order
from tests.exams.world import CAT, DAY, SITE, SLOTS, TZ, request, visit
from tests.factories import make_patient


def booked(code: str, clock: str, day: date = DAY, order_id: int = 90) -> Visit:
    return replace(visit(request(code), 0, clock, day), order_id=order_id)


def rules_broken(req: PatientRequest, it: Itinerary) -> set[str]:
    return {v.rule for v in validate.validate(CAT, SITE, TZ, [req], [it], SLOTS)}


def test_exams_planned_after_a_booked_one_keep_the_order_rules_with_it() -> None:
    """The abdominal ultrasound was booked alone at 11:30: the gastroscopy may only follow
    it, so not that morning (sedation last, mornings only) nor the day before."""
    us = booked("us_abdomen", "11:30", DAY + timedelta(days=1))
    req = replace(request("gastroscopy", "blood_fasting"), held=(us,))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    assert rules_broken(req, it) == set() and it.unplanned == []
    gastro = next(v for v in it.visits if v.exam_code == "gastroscopy")
    assert gastro.start > us.end
    # Blind to the booked ultrasound, the planner would put the gastroscopy first.
    blind = planner.plan_patient(CAT, SITE, TZ, replace(req, held=()), SLOTS)
    assert "order" in rules_broken(req, blind)
    fcfs = planner.plan_greedy(CAT, SITE, TZ, req, SLOTS)
    assert rules_broken(req, fcfs) == set()


def test_exams_join_the_day_of_a_booked_one_rather_than_make_another_trip() -> None:
    ecg = booked("ecg", "09:00", DAY + timedelta(days=1))
    req = replace(request("us_thyroid"), held=(ecg,))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    assert rules_broken(req, it) == set()
    assert it.days(TZ) == [DAY + timedelta(days=1)]
    assert planner.plan_patient(CAT, SITE, TZ, replace(req, held=()), SLOTS).days(TZ) == [DAY]


def test_the_follow_up_is_not_placed_during_a_booked_exam() -> None:
    """A contrast CT booked at 16:30, when the clinic's window closes at 16:45: the
    follow-up for the ECG's result ends before it, with the walk to the CT room."""
    ct = booked("ct_contrast", "16:30")
    req = replace(request("ecg", followup=True), held=(ct,))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    assert rules_broken(req, it) == set()
    assert it.followup_at is not None
    assert it.followup_at + timedelta(minutes=15 + 5) <= ct.start
    blind = planner.plan_patient(CAT, SITE, TZ, replace(req, held=()), SLOTS)
    assert "followup" in rules_broken(req, blind)


def test_the_rest_of_the_orders_stay_bookable_after_one_was_booked_alone(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    """The kiosk booked the ultrasound at the last morning time; the centre's proposal for
    the gastroscopy and the blood draw must then be one it can book."""
    p = make_patient(db)
    us = order(db, doctor, hospital, p, "us_abdomen", now)
    for code in ("gastroscopy", "blood_fasting"):
        order(db, doctor, hospital, p, code, now)
    day = now.astimezone(TZ).date() + timedelta(days=1)
    late = next(s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=2))
                if "us_abdomen" in s.exam_codes
                and s.start == datetime.combine(day, time(11, 30), tzinfo=TZ))
    window = Principal(role=Role.window, hospital_id=hospital.id, label="tests")
    first = booking.book_single(db, principal=window, order_id=us.id, slot_id=late.slot_id,
                                now=now)
    it = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=it, now=now)
    gastro = next(b for b in rows if b.exam_code == "gastroscopy")
    assert len(rows) == 2 and gastro.start_at > first.end_at
