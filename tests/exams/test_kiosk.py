"""Exam booking at the kiosk (EX-1): the identified patient's waiting orders, one simple exam
booked at the proposal or another free slot, its preparation shown and printable; complex
exams sent to the centre; a second tap books nothing more; others' orders stay hidden."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import TOKEN_COOKIE, get_now
from onetrip.exams import service
from onetrip.exams.models import ExamBooking, ExamOrder, ExamSlot
from onetrip.identity.models import Patient
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from tests.factories import make_patient, make_token, resident_id


@pytest.fixture
def kiosk(client: TestClient, db: Session, hospital: Hospital, now: datetime) -> TestClient:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    client.cookies.set(TOKEN_COOKIE, make_token(db, Role.kiosk, hospital))
    return client


def patient_with(db: Session, doctor: Principal, hospital: Hospital, now: datetime,
                 *codes: str, **order: object) -> tuple[Patient, str, list[ExamOrder]]:
    number = resident_id(date(1971, 3, 9))
    p = make_patient(db, document_number=number)
    orders = [service.place_order(db, principal=doctor, hospital_id=hospital.id,
                                  patient_id=p.id, exam_code=c, now=now,
                                  **order)  # type: ignore[arg-type]
              for c in codes]
    return p, number, orders


def identify(client: TestClient, number: str) -> None:
    r = client.post("/kiosk/identify", data={"card": number}, follow_redirects=False)
    assert r.status_code == 303


def bookings(db: Session, patient: Patient) -> list[ExamBooking]:
    return list(db.scalars(select(ExamBooking).where(ExamBooking.patient_id == patient.id)))


def test_ex1_a_simple_exam_is_booked_at_the_proposal_and_its_preparation_printed(
        kiosk: TestClient, db: Session, doctor: Principal, hospital: Hospital,
        now: datetime) -> None:
    p, number, (us, gastro) = patient_with(db, doctor, hospital, now, "us_abdomen",
                                           "gastroscopy")
    identify(kiosk, number)
    page = kiosk.get("/kiosk/exams")
    assert page.status_code == 200
    assert f'href="/kiosk/exams/orders/{us.id}"' in page.text
    # sedation: the kiosk sends the gastroscopy to the centre and offers no booking
    assert f'href="/kiosk/exams/orders/{gastro.id}"' not in page.text
    assert "需到检查预约中心办理" in page.text
    centre_only = kiosk.get(f"/kiosk/exams/orders/{gastro.id}")
    assert "该检查需到检查预约中心预约" in centre_only.text and "确认预约" not in centre_only.text
    slots = kiosk.get(f"/kiosk/exams/orders/{us.id}")
    assert "从今晚22:00起禁食" in slots.text  # the preparation, before choosing
    suggested = int(re.search(r'data-suggested="(\d+)"', slots.text).group(1))  # type: ignore[union-attr]
    r = kiosk.post(f"/kiosk/exams/orders/{us.id}",
                   data={"slot_id": suggested, "suggested": suggested}, follow_redirects=False)
    assert r.status_code == 303
    (b,) = bookings(db, p)
    assert b.slot_id == suggested and b.channel == "kiosk" and b.order_id == us.id
    assert r.headers["location"] == f"/kiosk/exams/bookings/{b.id}"
    slip = kiosk.get(r.headers["location"])
    assert slip.status_code == 200 and "检查前准备" in slip.text and "打印凭条" in slip.text
    assert "从今晚22:00起禁食" in slip.text and p.name not in slip.text  # the name masked
    # a second tap on the same form books nothing more and shows the same booking
    again = kiosk.post(f"/kiosk/exams/orders/{us.id}",
                       data={"slot_id": suggested, "suggested": suggested},
                       follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    assert len(bookings(db, p)) == 1
    listed = kiosk.get("/kiosk/exams")
    assert f'data-booking="{b.id}"' in listed.text


def test_another_free_slot_can_be_chosen_and_a_full_one_books_nothing(
        kiosk: TestClient, db: Session, doctor: Principal, hospital: Hospital,
        now: datetime) -> None:
    p, number, (ecg,) = patient_with(db, doctor, hospital, now, "ecg")
    identify(kiosk, number)
    slots = kiosk.get(f"/kiosk/exams/orders/{ecg.id}")
    choices = [int(x) for x in re.findall(r'data-slot="(\d+)"', slots.text)]
    assert len(choices) >= 2
    confirm = kiosk.get(f"/kiosk/exams/orders/{ecg.id}/slots/{choices[0]}")
    assert confirm.status_code == 200 and "确认预约" in confirm.text
    assert "检查前休息5分钟" in confirm.text  # the ECG's preparation
    # the first choice fills up meanwhile (its places booked by others)
    full = db.get_one(ExamSlot, choices[0])
    full.booked = full.capacity
    db.flush()
    r = kiosk.post(f"/kiosk/exams/orders/{ecg.id}", data={"slot_id": choices[0]})
    assert r.status_code == 409 and "已约满" in r.text and bookings(db, p) == []
    gone = kiosk.get(f"/kiosk/exams/orders/{ecg.id}/slots/{choices[0]}")
    assert gone.status_code == 409 and "另选时间" in gone.text
    ok = kiosk.post(f"/kiosk/exams/orders/{ecg.id}", data={"slot_id": choices[1]},
                    follow_redirects=False)
    assert ok.status_code == 303
    (b,) = bookings(db, p)
    assert b.slot_id == choices[1]


def test_the_kiosk_shows_and_books_only_the_presented_patients_orders(
        kiosk: TestClient, db: Session, doctor: Principal, hospital: Hospital,
        now: datetime) -> None:
    _p, number, _orders = patient_with(db, doctor, hospital, now, "ecg")
    other = make_patient(db)
    theirs = service.place_order(db, principal=doctor, hospital_id=hospital.id,
                                 patient_id=other.id, exam_code="us_thyroid", now=now)
    identify(kiosk, number)
    assert kiosk.get(f"/kiosk/exams/orders/{theirs.id}").status_code == 404
    before = db.scalar(select(func.count(ExamBooking.id)))
    r = kiosk.post(f"/kiosk/exams/orders/{theirs.id}", data={"slot_id": 1})
    assert r.status_code == 404 and db.scalar(select(func.count(ExamBooking.id))) == before
    kiosk.cookies.clear()  # no device token, no patient: nothing shown
    kiosk.cookies.set(TOKEN_COOKIE, make_token(db, Role.kiosk, hospital))
    assert kiosk.get("/kiosk/exams", follow_redirects=False).status_code == 401


def test_one_exam_booked_at_the_kiosk_leaves_room_for_the_rest_of_the_trip(
        kiosk: TestClient, db: Session, doctor: Principal, hospital: Hospital,
        now: datetime) -> None:
    """The kiosk's proposal for the ultrasound is its place in the plan of all the patient's
    orders: booked there, the centre can still fit the gastroscopy (which must follow it,
    in the morning) and the blood draw into the same trip, before tomorrow's follow-up.
    Proposed alone, the ultrasound went as near the follow-up as it could, at 11:30, and
    the gastroscopy then needed another day."""
    tz = now.tzinfo
    tomorrow = (now + timedelta(days=1)).date()
    window = {"needed_for_followup": True, "followup_building": "门诊楼",
              "followup_opens": datetime.combine(tomorrow, time(13, 30), tzinfo=tz),
              "followup_closes": datetime.combine(tomorrow, time(16, 45), tzinfo=tz)}
    p, number, (us, _gastro, _blood) = patient_with(
        db, doctor, hospital, now, "us_abdomen", "gastroscopy", "blood_fasting", **window)
    identify(kiosk, number)
    slots = kiosk.get(f"/kiosk/exams/orders/{us.id}")
    suggested = int(re.search(r'data-suggested="(\d+)"', slots.text).group(1))  # type: ignore[union-attr]
    r = kiosk.post(f"/kiosk/exams/orders/{us.id}",
                   data={"slot_id": suggested, "suggested": suggested}, follow_redirects=False)
    assert r.status_code == 303
    (first,) = bookings(db, p)
    rest = service.propose(db, hospital_id=hospital.id, patient_id=p.id, now=now)
    assert rest.unplanned == [] and rest.followup_at is not None
    assert set(rest.days(tz)) == {first.start_at.astimezone(tz).date()}  # type: ignore[arg-type]


def test_the_kiosk_offers_no_time_that_clashes_with_an_exam_booked_already(
        kiosk: TestClient, db: Session, doctor: Principal, hospital: Hospital,
        now: datetime) -> None:
    p, number, (ecg, thyroid) = patient_with(db, doctor, hospital, now, "ecg", "us_thyroid")
    identify(kiosk, number)
    ok = kiosk.post(f"/kiosk/exams/orders/{ecg.id}", data={"slot_id": re.findall(
        r'data-slot="(\d+)"', kiosk.get(f"/kiosk/exams/orders/{ecg.id}").text)[0]},
        follow_redirects=False)
    assert ok.status_code == 303
    (booked,) = bookings(db, p)
    page = kiosk.get(f"/kiosk/exams/orders/{thyroid.id}").text
    offered = [db.get_one(ExamSlot, int(x)) for x in re.findall(r'data-slot="(\d+)"', page)]
    free = [s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                          end=now + timedelta(days=2))
            if "us_thyroid" in s.exam_codes]

    def clash(start: datetime, end: datetime) -> bool:
        return start < booked.end_at and end > booked.start_at

    assert any(clash(s.start, s.start + timedelta(minutes=s.minutes)) for s in free)
    assert offered and not any(clash(s.start_at, s.end_at) for s in offered)
