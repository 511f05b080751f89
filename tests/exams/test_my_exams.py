"""The patient's own way to the exam timeline: 我的检查 in the portal lists the account's
family members with exams booked, each linking to the timeline (RM-1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.deps import TOKEN_COOKIE, get_now
from onetrip.exams import booking, service
from onetrip.identity import auth
from onetrip.identity.models import Account
from onetrip.identity.rules import Relationship
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from tests.factories import make_account, make_patient


def test_the_portal_leads_the_patient_to_their_exam_timeline(
        client: TestClient, db: Session, hospital: Hospital, doctor: Principal,
        centre: Principal, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    assert client.get("/me/exams", follow_redirects=False).headers["location"] == (
        "/sign-in?next=/me/exams")
    acc = make_account(db)
    me = make_patient(db, principal=acc, relationship=Relationship.self_)
    o = service.place_order(db, principal=doctor, hospital_id=hospital.id, patient_id=me.id,
                            exam_code="ecg", now=now)
    slot = next(s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=2))
                if "ecg" in s.exam_codes)
    booking.book_single(db, principal=centre, order_id=o.id, slot_id=slot.slot_id, now=now)
    client.cookies.set(TOKEN_COOKIE, auth.start_session(
        db, account=db.get_one(Account, acc.account_id)))
    page = client.get("/me/exams")
    assert page.status_code == 200
    assert f'href="/exams/patients/{me.id}/itinerary"' in page.text and "1 项检查" in page.text
    timeline = client.get(f"/exams/patients/{me.id}/itinerary")
    assert timeline.status_code == 200 and "常规心电图" in timeline.text
    assert 'href="/me/exams"' in timeline.text  # back to the portal, not the staff console
    assert 'href="/me/exams"' in client.get("/me/appointments").text  # in the portal's menu
    stranger = make_patient(db)
    assert client.get(f"/exams/patients/{stranger.id}/itinerary").status_code in (403, 404)
