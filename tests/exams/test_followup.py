"""The plan's outpatient follow-up as a real appointment (EX-2 with the booking engine): at a
free slot of the session the doctor named, after the results, booked with the exams or not
at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.exams import booking, planner, service, validate
from onetrip.exams.errors import FollowupUnavailable, ResourceInvalid
from onetrip.exams.models import ExamBooking, ExamOrder
from onetrip.exams.rules import Itinerary
from onetrip.identity.models import Patient
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking as scheduling_booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.exams.world import CAT, SITE, SLOTS, TZ, at, request
from tests.factories import (
    auth,
    make_department,
    make_hospital,
    make_patient,
    make_practitioner,
    make_token,
)


def exam_day(now: datetime) -> date:
    """The day of the exams: the day after ``now``, when the centre plans them."""
    return now.astimezone(TZ).date() + timedelta(days=1)


def afternoon(now: datetime, clock: str) -> datetime:
    return datetime.combine(exam_day(now), time.fromisoformat(clock), tzinfo=TZ)


class Clinic:
    """An afternoon clinic of one doctor on the day of the exams (tomorrow): six slots of
    ten minutes from 14:00."""

    def __init__(self, db: Session, hospital: Hospital, now: datetime) -> None:
        self.department: Department = make_department(db, hospital, name="消化内科门诊")
        self.doctor: Practitioner = make_practitioner(db, hospital, self.department)
        self.schedule: Schedule = scheduling_service.create_schedule(
            db, hospital=hospital, department=self.department,
            day=exam_day(now), session=SessionOfDay.pm, practitioner=self.doctor,
            start_time=time(14, 0), slot_minutes=10, capacity=6, now=now - timedelta(days=30))
        self.window = Principal(role=Role.window, hospital_id=hospital.id, label="窗口")

    def take(self, db: Session, now: datetime, start: datetime | None = None) -> None:
        """Another patient books a slot at the window (the one at ``start``, or the next)."""
        slot = next(s for s in scheduling_service.free_slots(
            db, schedule=self.schedule, channel=Channel.window, now=now)
            if start is None or s.start_at == start)
        other = make_patient(db)
        scheduling_booking.book(db, principal=self.window, patient_id=other.id,
                                channel=Channel.window, now=now, slot_id=slot.id)


@pytest.fixture
def clinic(db: Session, hospital: Hospital, now: datetime) -> Clinic:
    return Clinic(db, hospital, now)


def orders(db: Session, doctor: Principal, hospital: Hospital, patient: Patient,
           now: datetime, clinic: Clinic | None) -> list[ExamOrder]:
    window = {"needed_for_followup": True, "followup_opens": afternoon(now, "13:30"),
              "followup_closes": afternoon(now, "16:45"), "followup_building": "门诊楼"}
    if clinic is not None:
        window |= {"followup_department_id": clinic.department.id,
                   "followup_practitioner_id": clinic.doctor.id}
    return [service.place_order(db, principal=doctor, hospital_id=hospital.id,
                                patient_id=patient.id, exam_code=code, now=now,
                                **window)  # type: ignore[arg-type]
            for code in ("us_abdomen", "ecg")]


def appointments(db: Session, patient: Patient) -> list[Appointment]:
    return list(db.scalars(select(Appointment).where(Appointment.patient_id == patient.id)))


def planned(db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
            now: datetime, clinic: Clinic | None
            ) -> tuple[Patient, list[ExamOrder], Itinerary]:
    """A new patient's two orders and the centre's proposal for them."""
    p = make_patient(db)
    placed = orders(db, doctor, hospital, p, now, clinic)
    return p, placed, service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now,
                                      principal=centre)


def test_ex2_the_follow_up_is_booked_as_an_outpatient_appointment_after_the_results(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime, clinic: Clinic) -> None:
    p, placed, it = planned(db, hospital, doctor, centre, now, clinic)
    starts = {s.start_at for s in clinic.schedule.slots}
    assert it.followup_at in starts and it.trips(TZ) == 1
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=it, now=now)
    (appt,) = appointments(db, p)
    assert appt.status == "booked" and appt.channel == Channel.clinic.value
    assert appt.schedule_id == clinic.schedule.id and appt.start_at == it.followup_at
    assert {r.followup_appointment_id for r in rows} == {appt.id}
    cat = service.catalogue(db, hospital.id)
    for r in rows:  # the results are out before the doctor sees the patient
        assert r.end_at + timedelta(minutes=cat.exams[r.exam_code].result_minutes) <= (
            appt.start_at)
    lines = service.itinerary_lines(db, patient_id=p.id, day=exam_day(now))
    clock = f"{appt.start_at.astimezone(TZ):%H:%M}"
    assert lines[-1].startswith(f"{clock} 门诊复诊（已预约 消化内科门诊")
    assert {o.status for o in placed} == {"booked"}


def test_exams_booked_one_at_a_time_share_the_follow_up_appointment(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime, clinic: Clinic) -> None:
    """The ECG is booked first at its place in the plan, with the follow-up appointment (as
    the kiosk does); the ultrasound booked later keeps that appointment rather than ask the
    booking engine for a second one in the same department that day, which it refuses."""
    p, _placed, it = planned(db, hospital, doctor, centre, now, clinic)
    ecg = next(v for v in it.visits if v.exam_code == "ecg")
    booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                      itinerary=Itinerary(p.id, [ecg], it.followup_at), now=now)
    (appt,) = appointments(db, p)
    rest = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now,
                           principal=centre)
    assert [v.exam_code for v in rest.visits] == ["us_abdomen"]
    assert rest.followup_at == appt.start_at
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=rest, now=now)
    assert appointments(db, p) == [appt] and appt.status == "booked"
    assert rows[0].followup_appointment_id == appt.id


def test_a_follow_up_slot_taken_meanwhile_gives_way_to_the_next_one_that_keeps_the_rules(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime, clinic: Clinic) -> None:
    p, _placed, it = planned(db, hospital, doctor, centre, now, clinic)
    assert it.followup_at is not None
    clinic.take(db, now, it.followup_at)
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=it, now=now)
    (appt,) = appointments(db, p)
    assert appt.start_at > it.followup_at and rows[0].followup_at == appt.start_at


def test_with_no_outpatient_slot_left_nothing_is_booked_and_the_centre_is_told(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime, clinic: Clinic) -> None:
    p, placed, it = planned(db, hospital, doctor, centre, now, clinic)
    for _ in range(6):
        clinic.take(db, now)
    exams_before = db.scalar(select(func.count(ExamBooking.id)))
    with pytest.raises(FollowupUnavailable) as raised:
        booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                          itinerary=it, now=now)
    assert "均未预约" in raised.value.text
    assert db.scalar(select(func.count(ExamBooking.id))) == exams_before
    assert appointments(db, p) == []
    db.expire_all()
    assert {db.get_one(ExamOrder, o.id).status for o in placed} == {"pending"}
    # Planned again, the follow-up is left out: the exams alone can be booked.
    again = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now,
                            principal=centre)
    assert again.followup_at is None and again.visits
    booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                      itinerary=again, now=now)
    assert appointments(db, p) == []


def test_a_follow_up_without_a_named_session_is_a_return_visit_not_an_appointment(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p, _placed, it = planned(db, hospital, doctor, centre, now, None)
    assert it.followup_at is not None
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=it, now=now)
    assert appointments(db, p) == [] and rows[0].followup_appointment_id is None
    lines = service.itinerary_lines(db, patient_id=p.id, day=exam_day(now))
    assert lines[-1].endswith("门诊复诊（带检查结果，凭当日挂号）")


def test_a_follow_up_session_of_another_hospital_or_department_is_refused(
        db: Session, hospital: Hospital, doctor: Principal, now: datetime,
        clinic: Clinic) -> None:
    p = make_patient(db)
    elsewhere = make_department(db, make_hospital(db))
    stray = make_practitioner(db, hospital)  # works in no department
    window = {"followup_opens": afternoon(now, "13:30"),
              "followup_closes": afternoon(now, "16:45")}
    before = db.scalar(select(func.count(ExamOrder.id)))
    for bad in ({"followup_department_id": elsewhere.id},
                {"followup_department_id": clinic.department.id,
                 "followup_practitioner_id": stray.id},
                {"followup_practitioner_id": clinic.doctor.id},
                {"followup_department_id": clinic.department.id, "followup_opens": None,
                 "followup_closes": None}):
        with pytest.raises(ResourceInvalid):
            service.place_order(db, principal=doctor, hospital_id=hospital.id,
                                patient_id=p.id, exam_code="ecg", now=now,
                                **(window | bad))  # type: ignore[arg-type]
    assert db.scalar(select(func.count(ExamOrder.id))) == before


def test_the_planner_puts_the_follow_up_only_at_a_bookable_time() -> None:
    """Pure: with bookable starts given, the follow-up takes one of them (the earliest
    after the results) and the validator refuses any other time."""
    base = request("ecg", "xray_chest", followup=True)
    assert base.followup is not None
    req = replace(base, followup=replace(base.followup, starts=(at("15:10"), at("15:40"))))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    assert it.followup_at in (at("15:10"), at("15:40"))
    assert validate.validate(CAT, SITE, TZ, [req], [it], SLOTS) == []
    moved = Itinerary(it.patient_id, it.visits, at("15:20"))
    assert [v.rule for v in validate.validate(CAT, SITE, TZ, [req], [moved], SLOTS)] == [
        "followup"]
    none_left = replace(base, followup=replace(base.followup, starts=()))
    assert planner.plan_patient(CAT, SITE, TZ, none_left, SLOTS).followup_at is None
    fcfs = planner.plan_greedy(CAT, SITE, TZ, req, SLOTS)
    assert fcfs.followup_at in (at("15:10"), at("15:40"))


def test_the_api_books_the_follow_up_with_the_plan_and_refuses_a_stray_session(
        client: TestClient, db: Session, hospital: Hospital, now: datetime,
        clinic: Clinic) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    body = {"patient_id": p.id, "exam_code": "ecg", "needed_for_followup": True,
            "followup_opens": afternoon(now, "13:30").isoformat(),
            "followup_closes": afternoon(now, "16:45").isoformat(),
            "followup_department_id": make_department(db, make_hospital(db)).id}
    r = client.post("/api/v1/exams/orders", headers=doctor, json=body)
    assert r.status_code == 422 and r.json()["code"] == "resource_invalid"
    r = client.post("/api/v1/exams/orders", headers=doctor,
                    json=body | {"followup_department_id": clinic.department.id})
    assert r.status_code == 201, r.text
    plan = client.post("/api/v1/exams/plans", headers=centre,
                       json={"patient_id": p.id}).json()
    r = client.post("/api/v1/exams/bookings", headers=centre, json={
        "patient_id": p.id, "followup_at": plan["followup_at"],
        "visits": [{"order_id": v["order_id"], "slot_id": v["slot_id"]}
                   for v in plan["visits"]]})
    assert r.status_code == 201, r.text
    (row,) = r.json()
    (appt,) = appointments(db, p)
    assert row["followup_appointment_id"] == appt.id
