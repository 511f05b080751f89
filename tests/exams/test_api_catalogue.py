"""The exam catalogue over the API (read by the hospital's planners, replaced by its exam
centre, a broken one refused whole) and cancelling a booked exam (EX-1, EX-2, EX-4)."""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.exams.models import CatalogueExam, ExamBooking, ExamOrder, ExamSlot
from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Account
from onetrip.identity.rules import Relationship, Role
from onetrip.org.models import Hospital
from tests.factories import (
    auth,
    make_account,
    make_hospital,
    make_patient,
    make_token,
    mobile,
    resident_id,
)
from tests.identity.test_privacy import MOBILE, RESIDENT_ID

URL = "/api/v1/exams/catalogue"


def _stored(db: Session, hospital: Hospital) -> list[tuple[str, str, dict[str, Any]]]:
    db.expire_all()
    return [(e.code, e.name, dict(e.spec)) for e in db.scalars(
        select(CatalogueExam).where(CatalogueExam.hospital_id == hospital.id)
        .order_by(CatalogueExam.id))]


def test_ex2_the_catalogue_round_trips_and_stays_the_hospitals_own(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    fresh = make_hospital(db, level="tertiary")
    centre = auth(make_token(db, Role.exam_centre, fresh))
    doctor = auth(make_token(db, Role.doctor, fresh))
    demo_doctor = auth(make_token(db, Role.doctor, hospital))
    demo_before = client.get(URL, headers=demo_doctor).json()
    packaged = client.get(URL, headers=doctor)
    assert packaged.status_code == 200 and packaged.json()["exam"]
    assert _stored(db, fresh) == []  # nothing stored until the centre edits it
    edited = copy.deepcopy(packaged.json())
    first = edited["exam"][0]
    first["instruction"] = "检查前一天清淡饮食，当日空腹（本院说明）"
    dropped = edited["order"].pop()
    r = client.put(URL, headers=centre, json=edited)
    assert r.status_code == 200, r.text
    assert r.json() == edited
    again = client.get(URL, headers=doctor)
    assert again.status_code == 200 and again.json() == edited
    assert dropped not in again.json()["order"]
    stored = _stored(db, fresh)
    assert [code for code, _n, _s in stored] == [e["code"] for e in edited["exam"]]
    assert stored[0][2]["instruction"] == first["instruction"]
    assert client.get(URL, headers=demo_doctor).json() == demo_before


@pytest.mark.parametrize(("breakage", "said"), [
    ("unknown_exam_in_rule", "目录中没有的检查"), ("same_exam_twice", "检查编码重复"),
    ("cycle", "成环"), ("no_source", "缺少source")])
def test_ex2_a_broken_catalogue_is_refused_whole_and_changes_nothing(
        client: TestClient, db: Session, hospital: Hospital, breakage: str, said: str) -> None:
    centre = auth(make_token(db, Role.exam_centre, hospital))
    before = client.get(URL, headers=centre).json()
    stored = _stored(db, hospital)
    broken = copy.deepcopy(before)
    rule = broken["order"][0]
    if breakage == "unknown_exam_in_rule":
        broken["order"].append({**rule, "second": "no_such_exam"})
    elif breakage == "same_exam_twice":
        broken["exam"].append(dict(broken["exam"][0]))
    elif breakage == "cycle":
        broken["order"].append({**rule, "first": rule["second"], "second": rule["first"]})
        broken["order"][-1].pop("reverse_minutes", None)
    else:
        del broken["exam"][0]["source"]
    r = client.put(URL, headers=centre, json=broken)
    assert r.status_code == 422 and r.json()["code"] == "catalogue_invalid", r.text
    assert said in r.json()["message"]
    assert client.get(URL, headers=centre).json() == before
    assert _stored(db, hospital) == stored


def test_only_the_exam_centre_and_admins_replace_it_and_patients_do_not_read_it(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    doctor = auth(make_token(db, Role.doctor, hospital))
    before = client.get(URL, headers=doctor).json()
    stored = _stored(db, hospital)
    edited = {**before, "order": []}
    for role in (Role.doctor, Role.window, Role.regional_admin):
        token = make_token(db, role, None if role is Role.regional_admin else hospital)
        r = client.put(URL, headers=auth(token), json=edited)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", role
    assert client.put(URL, json=edited).status_code == 401
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=auth(make_token(db, Role.kiosk, hospital))).status_code == 403
    assert client.get(URL, headers=doctor).json() == before
    assert _stored(db, hospital) == stored


# --- cancelling a booked exam -------------------------------------------------------------


def _signed_in_patient(db: Session) -> tuple[int, dict[str, str], str, str]:
    acc = make_account(db)
    number, phone = resident_id(date(1966, 6, 6)), mobile()
    p = make_patient(db, principal=acc, relationship=Relationship.self_, name="钱小满",
                     document_number=number, phone=phone)
    secret = identity_auth.start_session(db, account=db.get_one(Account, acc.account_id))
    return p.id, auth(secret), number, phone


def _book(client: TestClient, db: Session, hospital: Hospital, patient_id: int) -> int:
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    order = client.post("/api/v1/exams/orders", headers=doctor,
                        json={"patient_id": patient_id, "exam_code": "ecg"})
    assert order.status_code == 201, order.text
    plan = client.post("/api/v1/exams/plans", headers=centre,
                       json={"patient_id": patient_id}).json()
    picks = [{"order_id": v["order_id"], "slot_id": v["slot_id"]} for v in plan["visits"]]
    r = client.post("/api/v1/exams/bookings", headers=centre,
                    json={"patient_id": patient_id, "visits": picks})
    assert r.status_code == 201, r.text
    (booking,) = r.json()
    return int(booking["id"])


def _state(db: Session, booking_id: int) -> tuple[str, int, str]:
    db.expire_all()
    b = db.get_one(ExamBooking, booking_id)
    return (b.status, db.get_one(ExamSlot, b.slot_id).booked,
            db.get_one(ExamOrder, b.order_id).status)


def test_ex4_a_patient_cancels_their_exam_and_its_place_is_free_again(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    pid, headers, number, phone = _signed_in_patient(db)
    booking_id = _book(client, db, hospital, pid)
    status, booked, order = _state(db, booking_id)
    assert (status, order) == ("booked", "booked") and booked >= 1
    r = client.post(f"/api/v1/exams/bookings/{booking_id}/cancel", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == booking_id and r.json()["status"] == "cancelled"
    assert number not in r.text and phone not in r.text
    assert not RESIDENT_ID.search(r.text) and not MOBILE.search(r.text)
    assert _state(db, booking_id) == ("cancelled", booked - 1, "pending")
    again = client.post(f"/api/v1/exams/bookings/{booking_id}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "exam_not_cancellable"
    assert _state(db, booking_id) == ("cancelled", booked - 1, "pending")


def test_ex4_another_hospital_or_another_patient_cannot_cancel(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    pid, _headers, number, phone = _signed_in_patient(db)
    booking_id = _book(client, db, hospital, pid)
    before = _state(db, booking_id)
    _other, stranger, *_ = _signed_in_patient(db)
    url = f"/api/v1/exams/bookings/{booking_id}/cancel"
    not_theirs = client.post(url, headers=stranger)
    assert not_theirs.status_code == 403 and not_theirs.json()["code"] == "permission_denied"
    far = auth(make_token(db, Role.exam_centre, make_hospital(db)))
    elsewhere = client.post(url, headers=far)
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "exam_booking_not_found"
    unknown = client.post("/api/v1/exams/bookings/999999999/cancel", headers=stranger)
    assert unknown.status_code == 404 and unknown.json()["code"] == "exam_booking_not_found"
    assert client.post(url).status_code == 401
    for r in (not_theirs, elsewhere, unknown):
        assert number not in r.text and phone not in r.text
    assert _state(db, booking_id) == before
