"""Exam use cases on the database: catalogue, resources, orders, plans, bookings (EX-1..4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.exams import booking, resources, service
from onetrip.exams.errors import (
    CalendarOverlap,
    CatalogueRejected,
    ChannelNotAllowed,
    CreatinineRequired,
    ExamSlotFull,
    FastingInvalid,
    PlanBreaksRules,
    ResourceInvalid,
    UnknownExam,
)
from onetrip.exams.models import CatalogueRule, ExamBooking, ExamOrder, ExamSlot
from onetrip.exams.rules import FreeSlot
from onetrip.identity.models import AuditEvent, Patient
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.notify.models import Notification
from onetrip.notify.templates import render
from onetrip.org.models import Hospital
from onetrip.scheduling import booking as scheduling_booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.errors import PatientRestricted
from onetrip.scheduling.penalties import PenaltyRecord
from tests.factories import make_patient


def order(db: Session, who: Principal, hospital: Hospital, patient: Patient, code: str,
          now: datetime, **kw: object) -> ExamOrder:
    return service.place_order(db, principal=who, hospital_id=hospital.id,
                               patient_id=patient.id, exam_code=code, now=now, **kw)  # type: ignore[arg-type]


def first_free(db: Session, hospital: Hospital, code: str, now: datetime) -> FreeSlot:
    return next(s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=1))
                if code in s.exam_codes)


def counts(db: Session) -> tuple[int, int, int]:
    return (db.scalar(select(func.count(ExamOrder.id))) or 0,
            db.scalar(select(func.count(ExamBooking.id))) or 0,
            db.scalar(select(func.sum(ExamSlot.booked))) or 0)


def test_an_exam_the_catalogue_lacks_is_refused_and_nothing_is_stored(
        db: Session, hospital: Hospital, doctor: Principal, now: datetime) -> None:
    p = make_patient(db)
    before = counts(db)
    with pytest.raises(UnknownExam):
        order(db, doctor, hospital, p, "pet_ct", now)
    assert counts(db) == before


def test_contrast_ct_needs_a_recent_creatinine_for_a_patient_over_60(
        db: Session, hospital: Hospital, doctor: Principal, now: datetime) -> None:
    elderly = make_patient(db, birth_date=date(1950, 3, 1))
    with pytest.raises(CreatinineRequired):
        order(db, doctor, hospital, elderly, "ct_contrast", now)
    with pytest.raises(CreatinineRequired):
        order(db, doctor, hospital, elderly, "ct_contrast", now,
              creatinine_on=now.date() - timedelta(days=45))
    ok = order(db, doctor, hospital, elderly, "ct_contrast", now,
               creatinine_on=now.date() - timedelta(days=5))
    assert ok.status == "pending"
    young = make_patient(db, birth_date=date(1995, 3, 1))
    assert order(db, doctor, hospital, young, "ct_contrast", now).status == "pending"


def test_ex3_resources_refuse_overlaps_long_ultrasound_slots_and_unknown_exams(
        db: Session, hospital: Hospital) -> None:
    args = dict(hospital_id=hospital.id, name="超声9室", building="医技楼", capacity=1)
    with pytest.raises(CalendarOverlap):
        resources.add_resource(db, code="US9", exam_codes=["us_thyroid"], slot_minutes=15,
                             hours=[["08:00", "12:00"], ["11:00", "14:00"]], **args)  # type: ignore[arg-type]
    with pytest.raises(ResourceInvalid, match="30分钟"):
        resources.add_resource(db, code="US9", exam_codes=["us_thyroid"], slot_minutes=60,
                             hours=[["08:00", "12:00"]], **args)  # type: ignore[arg-type]
    with pytest.raises(UnknownExam):
        resources.add_resource(db, code="US9", exam_codes=["us_heart"], slot_minutes=15,
                             hours=[["08:00", "12:00"]], **args)  # type: ignore[arg-type]
    res = resources.add_resource(db, code="US9", exam_codes=["us_thyroid"], slot_minutes=15,
                               hours=[["08:00", "12:00"]], **args)  # type: ignore[arg-type]
    start = datetime.fromisoformat("2030-01-07T08:00:00+08:00")
    resources.add_slots(db, resource=res, starts=[start])
    with pytest.raises(CalendarOverlap):
        resources.add_slots(db, resource=res, starts=[start + timedelta(minutes=30),
                                                    start + timedelta(minutes=10)])
    n = db.scalar(select(func.count(ExamSlot.id)).where(ExamSlot.resource_id == res.id))
    assert n == 1


def test_a_catalogue_edit_that_breaks_it_is_refused_and_the_old_one_stays(
        db: Session, hospital: Hospital) -> None:
    rules_before = db.scalar(select(func.count(CatalogueRule.id)).where(
        CatalogueRule.hospital_id == hospital.id))
    with pytest.raises(CatalogueRejected, match="成环"):
        service.edit_catalogue(db, hospital_id=hospital.id, rule={
            "first": "gastroscopy", "second": "us_abdomen", "reason": "x", "source": "y"})
    assert db.scalar(select(func.count(CatalogueRule.id)).where(
        CatalogueRule.hospital_id == hospital.id)) == rules_before
    cat = service.edit_catalogue(db, hospital_id=hospital.id, exam={
        **{k: v for k, v in service.catalogue(db, hospital.id).exams["ecg"].__dict__.items()
           if v is not None}, "latest_start": "10:00"})
    assert cat.exams["ecg"].latest_start is not None
    assert service.catalogue(db, hospital.id).exams["ecg"].latest_start == cat.exams[
        "ecg"].latest_start


def test_ex2_a_proposed_one_trip_plan_books_every_slot_and_queues_the_preparation(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p = make_patient(db)
    for code in ("gastroscopy", "us_abdomen", "blood_fasting"):
        order(db, doctor, hospital, p, code, now)
    it = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    assert it.trips(now.tzinfo) == 1 and not it.unplanned  # type: ignore[arg-type]
    before = counts(db)
    rows = booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                             itinerary=it, now=now)
    assert len(rows) == 3 and counts(db)[1:] == (before[1] + 3, before[2] + 3)
    assert {o.status for o in service.pending_orders(db, hospital_id=hospital.id,
                                                     patient_id=p.id)} == set()
    notes = list(db.scalars(select(Notification).where(Notification.patient_id == p.id)))
    assert len(notes) == 3 and all(n.template == "exam_preparation" for n in notes)
    gastro = next(n for n in notes if "胃镜" in n.variables["exam"])
    assert "22:00起禁食" in gastro.variables["instruction"]
    lines = service.itinerary_lines(db, patient_id=p.id, day=rows[0].start_at.astimezone(
        now.tzinfo).date())
    assert len(lines) == 3 and "腹部超声" in lines[0] and "胃镜" in lines[-1]


@pytest.mark.parametrize(("code", "words"), [
    ("us_abdomen", "从今晚22:00起禁食"), ("us_urinary", "检查前1小时饮水800ml")])
def test_rm1_the_preparation_reminder_reaches_the_outbox_for_the_evening_before(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal, now: datetime,
        code: str, words: str) -> None:
    p = make_patient(db)
    o = order(db, doctor, hospital, p, code, now)
    slot = next(s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=2))
                if code in s.exam_codes and s.start.astimezone(now.tzinfo).hour == 9)
    b = booking.book_single(db, principal=centre, order_id=o.id, slot_id=slot.slot_id, now=now)
    (note,) = db.scalars(select(Notification).where(Notification.patient_id == p.id))
    text = render(note.template, note.variables)
    assert note.template == "exam_preparation" and note.status == "queued"
    assert words in text and b.resource.room in text and "09:" in text
    local = slot.start.astimezone(now.tzinfo)  # type: ignore[arg-type]
    evening = datetime.combine(local.date() - timedelta(days=1), time(18, 0),
                               tzinfo=now.tzinfo)
    assert note.send_at == evening


def test_ex2_a_thyroid_scan_comes_after_the_two_weeks_without_iodine(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    """The patient stops iodine-rich food and medicines 14 days before a thyroid scan
    (catalogue ``prep_days``): the plan looks that far ahead, and a slot sooner is refused."""
    tz = get_settings().tz
    p = make_patient(db)
    o = order(db, doctor, hospital, p, "nm_thyroid", now)
    it = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    assert not it.unplanned
    (visit,) = it.visits
    scans = [s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                           end=now + timedelta(days=30))
             if "nm_thyroid" in s.exam_codes]
    ready = now.date() + timedelta(days=14)
    # The first clinic day with a scan slot once the two weeks are over.
    assert visit.start.astimezone(tz).date() == min(
        s.start.astimezone(tz).date() for s in scans
        if s.start.astimezone(tz).date() >= ready)
    soon = next(s for s in scans if s.start.astimezone(tz).date() < ready)
    before = counts(db)
    with pytest.raises(PlanBreaksRules, match="14天"):
        booking.book_single(db, principal=centre, order_id=o.id, slot_id=soon.slot_id,
                            now=now)
    assert counts(db) == before
    booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                      itinerary=it, now=now)
    assert counts(db)[1] == before[1] + 1


def test_ex2_a_patient_who_came_fasting_has_the_ultrasound_that_morning(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal) -> None:
    """One trip: told of an abdominal ultrasound at 07:30, a patient who has eaten nothing
    since last night has it that morning once the centre records so; otherwise tomorrow."""
    tz = get_settings().tz
    days = sorted({s.start.astimezone(tz).date() for s in service.free_slots(
        db, hospital_id=hospital.id, start=datetime.now(tz), end=datetime.now(tz)
        + timedelta(days=6)) if "us_abdomen" in s.exam_codes})
    day = days[1]  # a clinic day with the next one open too, its morning still ahead
    now = datetime.combine(day, time(7, 30), tzinfo=tz)
    p = make_patient(db)
    o = order(db, doctor, hospital, p, "us_abdomen", now)
    first = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    assert first.visits[0].start.astimezone(tz).date() > day
    for bad in (now + timedelta(minutes=5), now - timedelta(hours=25)):
        with pytest.raises(FastingInvalid):
            service.record_fasting(db, principal=centre, hospital_id=hospital.id,
                                   patient_id=p.id, since=bad, now=now)
        assert db.get_one(ExamOrder, o.id).fasting_since is None
    last_night = datetime.combine(day - timedelta(days=1), time(21, 0), tzinfo=tz)
    rows = service.record_fasting(db, principal=centre, hospital_id=hospital.id,
                                  patient_id=p.id, since=last_night, now=now)
    assert [r.id for r in rows] == [o.id] and rows[0].fasting_since == last_night
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "exam.fasting", AuditEvent.patient_id == p.id)) == 1
    # A fasting blood draw the doctor adds meanwhile is that morning too, booked alone as
    # well: the last meal is the patient's, not one order's.
    blood = order(db, doctor, hospital, p, "blood_fasting", now)
    soon = now + timedelta(minutes=20)
    it = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=soon)
    assert {v.start.astimezone(tz).date() for v in it.visits} == {day}
    assert all(v.start.astimezone(tz).hour < 12 for v in it.visits)
    # Hours later (the patient may have eaten since), the fast counts from being told again.
    later = service.propose(db, hospital_id=hospital.id, patient_id=p.id,
                            now=now + service.FASTING_HOLDS + timedelta(minutes=1))
    assert all(v.start.astimezone(tz).date() > day for v in later.visits)
    draw = next(v for v in it.visits if v.order_id == blood.id)
    booking.book_single(db, principal=centre, order_id=blood.id, slot_id=draw.slot_id,
                        now=soon)
    booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                      itinerary=replace(it, visits=[v for v in it.visits if v is not draw]),
                      now=soon)


def test_the_batch_looks_further_ahead_only_in_rooms_whose_exams_need_preparation_days(
        db: Session, hospital: Hospital, now: datetime) -> None:
    """One thyroid scan waiting must not stretch every patient's batch plan over three
    weeks: only the nuclear medicine room's slots go beyond PLAN_DAYS."""
    cat = service.catalogue(db, hospital.id)
    ahead = service.plan_end(cat, ["nm_thyroid"], now)
    kept = service.batch_slots(cat, service.free_slots(
        db, hospital_id=hospital.id, start=now, end=ahead), now)
    short = now + timedelta(days=service.PLAN_DAYS)
    assert kept and all(s.start < short for s in kept if "nm_thyroid" not in s.exam_codes)
    assert any(s.start >= short for s in kept if "nm_thyroid" in s.exam_codes)


def test_a_plan_whose_slot_filled_meanwhile_books_nothing(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p = make_patient(db)
    for code in ("us_thyroid", "ecg"):
        order(db, doctor, hospital, p, code, now)
    it = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    last = it.visits[-1].slot_id
    db.execute(ExamSlot.__table__.update().where(ExamSlot.id == last)  # type: ignore[attr-defined]
               .values(booked=ExamSlot.capacity))
    before = counts(db)
    with pytest.raises(ExamSlotFull):
        booking.book_plan(db, principal=centre, hospital_id=hospital.id, patient_id=p.id,
                          itinerary=it, now=now)
    assert counts(db) == before


def test_ex1_single_simple_exams_at_the_window_several_or_complex_at_the_centre(
        db: Session, hospital: Hospital, doctor: Principal, now: datetime) -> None:
    window = Principal(role=Role.window, hospital_id=hospital.id, label="tests")
    p = make_patient(db)
    gastro = order(db, doctor, hospital, p, "gastroscopy", now)
    thyroid = order(db, doctor, hospital, p, "us_thyroid", now)
    free = service.free_slots(db, hospital_id=hospital.id, start=now,
                              end=now + timedelta(days=1))
    endo = next(s for s in free if "gastroscopy" in s.exam_codes)
    us = next(s for s in free if "us_thyroid" in s.exam_codes)
    with pytest.raises(ChannelNotAllowed):
        booking.book_single(db, principal=window, order_id=gastro.id, slot_id=endo.slot_id,
                            now=now)
    b = booking.book_single(db, principal=window, order_id=thyroid.id, slot_id=us.slot_id,
                            now=now)
    assert b.channel == "window"
    later_endo = next(s for s in free if "gastroscopy" in s.exam_codes
                      and s.start >= us.start + timedelta(hours=1))
    booked = booking.book_single(db, principal=doctor, order_id=gastro.id,
                                 slot_id=later_endo.slot_id, now=now)
    assert booked.channel == "clinic"


def test_a_single_exam_that_clashes_with_a_booked_one_is_refused(
        db: Session, hospital: Hospital, doctor: Principal, now: datetime) -> None:
    p = make_patient(db)
    us = order(db, doctor, hospital, p, "us_abdomen", now)
    gastro = order(db, doctor, hospital, p, "gastroscopy", now)
    free = service.free_slots(db, hospital_id=hospital.id, start=now,
                              end=now + timedelta(days=1))
    endo = next(s for s in free if "gastroscopy" in s.exam_codes)
    booking.book_single(db, principal=doctor, order_id=gastro.id, slot_id=endo.slot_id,
                        now=now)
    later_us = next(s for s in free if "us_abdomen" in s.exam_codes
                    and s.start > endo.start + timedelta(hours=1))
    with pytest.raises(PlanBreaksRules, match="胃镜"):  # ultrasound must come first
        booking.book_single(db, principal=doctor, order_id=us.id, slot_id=later_us.slot_id,
                            now=now)


def test_cancel_frees_the_place_the_order_waits_again_and_no_reminder_goes(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p = make_patient(db)
    o = order(db, doctor, hospital, p, "ecg", now)
    slot = first_free(db, hospital, "ecg", now)
    b = booking.book_single(db, principal=centre, order_id=o.id, slot_id=slot.slot_id, now=now)
    booked = db.get_one(ExamSlot, slot.slot_id).booked
    booking.cancel(db, principal=centre, booking_id=b.id, now=now)
    db.expire_all()
    assert db.get_one(ExamSlot, slot.slot_id).booked == booked - 1
    assert db.get_one(ExamOrder, o.id).status == "pending"
    # RM-1: the preparation reminder of a cancelled exam is not sent.
    assert [n.status for n in db.scalars(select(Notification).where(
        Notification.patient_id == p.id, Notification.template == "exam_preparation"))] == [
        "cancelled"]


def test_ex4_an_exam_no_show_restricts_online_booking_by_the_booking_rule(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    p = make_patient(db)
    o = order(db, doctor, hospital, p, "ecg", now)
    slot = first_free(db, hospital, "ecg", now)
    booking.book_single(db, principal=centre, order_id=o.id, slot_id=slot.slot_id, now=now)
    assert booking.restriction(db, patient_id=p.id, hospital_id=hospital.id, now=now) is None
    later = slot.start + timedelta(hours=1)
    assert booking.mark_noshows(db, hospital_id=hospital.id, now=later) >= 1
    found = booking.restriction(db, patient_id=p.id, hospital_id=hospital.id, now=later)
    assert found is not None and (found.until - later).days in (29, 30)  # default rule: 30 days
    again = order(db, doctor, hospital, p, "us_thyroid", later)
    me = Principal(role=Role.patient, patient_ids=frozenset({p.id}), account_id=1)
    us = next(s for s in service.free_slots(db, hospital_id=hospital.id, start=later,
                                            end=later + timedelta(days=2))
              if "us_thyroid" in s.exam_codes)
    with pytest.raises(PatientRestricted):
        booking.book_single(db, principal=me, order_id=again.id, slot_id=us.slot_id, now=later)


def test_ex4_an_exam_no_show_restricts_outpatient_booking_too_and_counts_once(
        db: Session, hospital: Hospital, doctor: Principal, centre: Principal,
        now: datetime) -> None:
    """BK-6 with EX-4: the booking engine's own check (used for every outpatient booking)
    sees the exam no-show; sweeping again records nothing more."""
    p = make_patient(db)
    o = order(db, doctor, hospital, p, "ecg", now)
    slot = first_free(db, hospital, "ecg", now)
    b = booking.book_single(db, principal=centre, order_id=o.id, slot_id=slot.slot_id, now=now)
    later = slot.start + timedelta(hours=1)
    _policy, rule = scheduling_service.policy_for(db, hospital.id)
    assert scheduling_booking.restriction_of(db, patient_id=p.id, hospital_id=hospital.id,
                                             rule=rule, now=later) is None
    booking.mark_noshows(db, hospital_id=hospital.id, now=later)
    assert booking.mark_noshows(db, hospital_id=hospital.id, now=later) == 0
    found = scheduling_booking.restriction_of(db, patient_id=p.id, hospital_id=hospital.id,
                                              rule=rule, now=later)
    assert found is not None and found.count == 1
    (event,) = db.scalars(select(PenaltyRecord).where(PenaltyRecord.patient_id == p.id))
    assert (event.source, event.source_id, event.kind) == ("exam", b.id, "noshow")
    # BK-6: it counts at the exam's time (its calendar year), however late it was marked.
    assert event.at == slot.start == db.get_one(
        ExamBooking, b.id, populate_existing=True).noshow_at


def test_batch_proposals_cover_every_waiting_patient(
        db: Session, hospital: Hospital, now: datetime) -> None:
    waiting = {o.patient_id for o in service.pending_orders(db, hospital_id=hospital.id)}
    plans = service.propose_batch(db, hospital_id=hospital.id, now=now)
    assert {req.patient_id for req, _ in plans} == waiting and waiting
    assert all(it.visits for _req, it in plans)


def test_the_batch_books_every_waiting_patients_plan_or_says_why_not(
        db: Session, hospital: Hospital, centre: Principal, now: datetime) -> None:
    """EX-2 batch mode, booked: each patient's plan of the joint re-plan becomes bookings
    (all of that patient's or none); a plan whose slot went since it was made keeps its
    orders waiting, with the reason."""
    plans = service.propose_batch(db, hospital_id=hospital.id, now=now)
    taken = plans[0][1].visits[0].slot_id  # the first patient's slot goes meanwhile
    db.execute(ExamSlot.__table__.update().where(ExamSlot.id == taken)  # type: ignore[attr-defined]
               .values(booked=ExamSlot.capacity))
    booked, failed = booking.book_batch(db, principal=centre, hospital_id=hospital.id,
                                        plans=plans, now=now)
    first = plans[0][0].patient_id
    assert set(failed) == {first} and "约满" in failed[first]
    assert set(booked) == {req.patient_id for req, _ in plans} - {first}
    for req, it in plans:
        rows = booking.bookings_of(db, patient_id=req.patient_id)
        expected = set() if req.patient_id == first else {v.slot_id for v in it.visits}
        assert {b.slot_id for b in rows} == expected
    assert {o.patient_id for o in service.pending_orders(db, hospital_id=hospital.id)} == {
        first}
