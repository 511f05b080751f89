"""GET /api/v1/notifications: staff see a patient's messages, under identity's access rules."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity.models import AuditEvent
from onetrip.identity.rules import Role
from onetrip.scheduling import booking
from onetrip.scheduling.rules import Channel
from tests.factories import auth, make_token
from tests.scheduling.conftest import OPEN, Clinic


def test_rm1_staff_list_a_patients_notifications_and_the_read_is_audited(
        db: Session, clinic: Clinic, client: TestClient) -> None:
    patient, me = clinic.patient(db)
    booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                 schedule_id=clinic.schedule.id, now=OPEN)
    window = auth(make_token(db, Role.window, clinic.hospital))
    r = client.get("/api/v1/notifications", params={"patient_id": patient.id}, headers=window)
    assert r.status_code == 200, r.text
    rows = r.json()
    assert sorted(n["template"] for n in rows) == ["booking_confirmed", "day_before",
                                                   "hour_before"]
    assert {"channel", "status", "send_at", "sent_at"} <= set(rows[0])
    assert "variables" not in rows[0]
    assert db.scalar(select(AuditEvent.id).where(AuditEvent.action == "notification.read",
                                                 AuditEvent.patient_id == patient.id))


def test_rm1_patients_and_other_roles_without_access_are_refused(
        db: Session, clinic: Clinic, client: TestClient) -> None:
    patient, _me = clinic.patient(db)
    regulator = auth(make_token(db, Role.regulator))
    r = client.get("/api/v1/notifications", params={"patient_id": patient.id},
                   headers=regulator)
    assert r.status_code == 403
    assert client.get("/api/v1/notifications", params={"patient_id": patient.id}).status_code \
        == 401
