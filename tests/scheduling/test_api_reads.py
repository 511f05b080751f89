"""Scheduling API routes no other test requests: read one appointment, check in, the live
queue (the patient's place and the staff view) and declining a rebooking offer (BK-6, BK-8,
BK-11); each refusal has its stable code and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Account, AuditEvent, Patient
from onetrip.identity.rules import Relationship, Role
from onetrip.scheduling import service, stopclinic
from onetrip.scheduling.models import Appointment, RebookingOffer, Slot
from tests.factories import (
    auth,
    make_account,
    make_hospital,
    make_patient,
    make_practitioner,
    make_token,
    mobile,
    resident_id,
)
from tests.scheduling.conftest import DAY, OPEN, Clinic, Clock, chinese_name

#: The birth date of every signed-in patient here (any adult will do).
BORN = date(1975, 4, 4)


@dataclass
class Signed:
    """A real-name patient of a phone account, signed in with a session secret."""

    patient: Patient
    headers: dict[str, str]
    number: str
    phone: str


def sign_in_patient(db: Session) -> Signed:
    acc = make_account(db)
    number, phone = resident_id(BORN), mobile()
    p = make_patient(db, principal=acc, relationship=Relationship.self_, name=chinese_name(),
                     document_number=number, phone=phone, birth_date=BORN)
    secret = identity_auth.start_session(db, account=db.get_one(Account, acc.account_id))
    return Signed(p, auth(secret), number, phone)


def assert_private(text: str, *people: Signed) -> None:
    """No unmasked identity number or phone of anyone involved in a response (ID-1)."""
    for s in people:
        assert s.number not in text and s.phone not in text


def _status(db: Session, appt_id: int) -> str:
    db.expire_all()
    return db.get_one(Appointment, appt_id).status


def test_a_patient_reads_their_own_appointment_but_not_another_patients(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    """ID-6: an account sees only its own family's appointments; others' are refused with
    an audit row; staff of another hospital are told it does not exist."""
    me, other = sign_in_patient(db), sign_in_patient(db)
    appt = clinic.book(db, me.patient.id)
    theirs = clinic.book(db, other.patient.id)
    r = client.get(f"/api/v1/appointments/{appt.id}", headers=me.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["patient_id"], body["slot_id"], body["status"]) == (
        appt.id, me.patient.id, appt.slot_id, "booked")
    assert body["schedule_id"] == clinic.schedule.id and body["date"] == DAY.isoformat()
    assert_private(r.text, me, other)
    denied = client.get(f"/api/v1/appointments/{theirs.id}", headers=me.headers)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert_private(denied.text, me, other)
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.patient_id == other.patient.id, AuditEvent.outcome == "denied")) == 1
    unknown = client.get(f"/api/v1/appointments/{10**9}", headers=me.headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "appointment_not_found"
    far = auth(make_token(db, Role.window, make_hospital(db)))
    elsewhere = client.get(f"/api/v1/appointments/{appt.id}", headers=far)
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "appointment_not_found"
    assert client.get(f"/api/v1/appointments/{appt.id}").status_code == 401


def test_bk8_check_in_within_the_window_with_the_booked_patients_document(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    """BK-8: on site the presented document must be the booked patient's (no transfer);
    check-in opens the policy's minutes before the slot."""
    me, other = sign_in_patient(db), sign_in_patient(db)
    appt = clinic.book(db, me.patient.id)
    opens_minutes = service.policy_for(db, clinic.hospital.id)[0].check_in_opens_minutes
    opens = appt.start_at - timedelta(minutes=opens_minutes)
    kiosk = auth(make_token(db, Role.kiosk, clinic.hospital))
    url = f"/api/v1/appointments/{appt.id}/check-in"
    clock.now = opens - timedelta(minutes=1)
    early = client.post(url, headers=me.headers)
    assert early.status_code == 409 and early.json()["code"] == "check_in_refused"
    assert early.json()["detail"]["opens_at"] == opens.isoformat()
    assert _status(db, appt.id) == "booked"
    clock.now = opens
    for body in ({"document_type": "resident_id_card", "document_number": other.number},
                 {}):
        wrong = client.post(url, headers=kiosk, json=body)
        assert wrong.status_code == 409 and wrong.json()["code"] == "check_in_refused", body
        assert wrong.json()["detail"] == {"reason": "not_owner"}
        assert_private(wrong.text, me, other)
    assert _status(db, appt.id) == "booked"
    ok = client.post(url, headers=kiosk, json={"document_type": "resident_id_card",
                                               "document_number": me.number})
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "arrived" and ok.json()["checked_in_at"] is not None
    assert_private(ok.text, me, other)
    row = db.get_one(Appointment, appt.id)
    assert row.status == "arrived" and row.checked_in_at == opens


def test_bk11_queue_position_is_null_before_check_in_then_counts_who_is_ahead(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    """BK-11: the patient's live place in the queue and the estimated wait."""
    first, second = sign_in_patient(db), sign_in_patient(db)
    a, b = clinic.book(db, first.patient.id), clinic.book(db, second.patient.id)
    slot_minutes = clinic.schedule.slot_minutes
    clock.now = clinic.schedule.start_at - timedelta(minutes=30)
    before = client.get(f"/api/v1/appointments/{b.id}/queue", headers=second.headers)
    assert before.status_code == 200 and before.json() is None
    for who, appt in ((first, a), (second, b)):
        r = client.post(f"/api/v1/appointments/{appt.id}/check-in", headers=who.headers)
        assert r.status_code == 200, r.text
    to_start = int((clinic.schedule.start_at - clock.now).total_seconds() // 60)
    mine = client.get(f"/api/v1/appointments/{b.id}/queue", headers=second.headers)
    assert mine.status_code == 200
    assert mine.json() == {"appointment_id": b.id, "ahead": 1, "late": False,
                           "estimated_wait_minutes": to_start + slot_minutes}
    assert_private(mine.text, first, second)
    theirs = client.get(f"/api/v1/appointments/{a.id}/queue", headers=second.headers)
    assert theirs.status_code == 403 and theirs.json()["code"] == "permission_denied"
    gone = client.get(f"/api/v1/appointments/{10**9}/queue", headers=second.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "appointment_not_found"


def test_bk11_staff_see_the_sessions_queue_others_are_refused(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    first, second = sign_in_patient(db), sign_in_patient(db)
    a, b = clinic.book(db, first.patient.id), clinic.book(db, second.patient.id)
    clock.now = clinic.schedule.start_at
    for who, appt in ((first, a), (second, b)):
        assert client.post(f"/api/v1/appointments/{appt.id}/check-in",
                           headers=who.headers).status_code == 200
    url = f"/api/v1/schedules/{clinic.schedule.id}/queue"
    for role in (Role.window, Role.doctor):
        r = client.get(url, headers=auth(make_token(db, role, clinic.hospital)))
        assert r.status_code == 200, role
        assert [(e["appointment_id"], e["ahead"]) for e in r.json()] == [(a.id, 0), (b.id, 1)]
        assert_private(r.text, first, second)
    refused = [first.headers, auth(make_token(db, Role.kiosk, clinic.hospital)),
               auth(make_token(db, Role.window, make_hospital(db))),
               auth(make_token(db, Role.regulator))]
    for headers in refused:
        r = client.get(url, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert client.get(url).status_code == 401
    window = auth(make_token(db, Role.window, clinic.hospital))
    unknown = client.get(f"/api/v1/schedules/{10**9}/queue", headers=window)
    assert unknown.status_code == 404 and unknown.json()["code"] == "schedule_not_found"
    assert {_status(db, a.id), _status(db, b.id)} == {"arrived"}


@pytest.fixture
def offered(db: Session, clinic: Clinic) -> tuple[Signed, RebookingOffer]:
    """A signed-in patient whose session stopped: an offer holding an equivalent slot of a
    colleague's session two days later (BK-6)."""
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level=clinic.doctor.service_level)
    clinic.session(db, day=DAY + timedelta(days=2), doctor=colleague)
    me = sign_in_patient(db)
    clinic.book(db, me.patient.id)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window,
                                      schedule_id=clinic.schedule.id, reason="医生外出会诊",
                                      now=OPEN).offers
    assert offer.held_slot_id is not None
    return me, offer


def test_bk6_declining_a_rebooking_offer_frees_its_slot_once(
        client: TestClient, clock: Clock, db: Session,
        offered: tuple[Signed, RebookingOffer]) -> None:
    me, offer = offered
    held = offer.held_slot_id
    stranger = sign_in_patient(db)
    url = f"/api/v1/rebooking-offers/{offer.id}/decline"
    not_mine = client.post(url, headers=stranger.headers)
    assert not_mine.status_code == 403 and not_mine.json()["code"] == "permission_denied"
    db.expire_all()
    assert db.get_one(RebookingOffer, offer.id).status == "open"
    assert db.get_one(Slot, held).status == "held"
    r = client.post(url, headers=me.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["status"], body["patient_id"]) == (offer.id, "declined",
                                                                me.patient.id)
    assert body["refund_flagged"] is True and body["new_appointment_id"] is None
    assert_private(r.text, me, stranger)
    db.expire_all()
    assert db.get_one(RebookingOffer, offer.id).status == "declined"
    assert db.get_one(Slot, held).status == "free"
    again = client.post(url, headers=me.headers)
    assert again.status_code == 409 and again.json()["code"] == "offer_unavailable"
    assert again.json()["detail"] == {"status": "declined"}
    unknown = client.post(f"/api/v1/rebooking-offers/{10**9}/decline", headers=me.headers)
    assert unknown.status_code == 409 and unknown.json()["code"] == "offer_unavailable"
    db.expire_all()
    assert db.get_one(RebookingOffer, offer.id).status == "declined"
    assert db.get_one(Slot, held).status == "free"
