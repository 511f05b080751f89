"""Numbers no database can hold are bad input, answered with a clear 4xx and a stable code
wherever they come in (a path, a query, a body), never a 500, and nothing is written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.scheduling.models import Appointment, WaitlistEntry
from tests.factories import auth, make_token
from tests.scheduling.conftest import Clinic

#: Past PostgreSQL's INTEGER (ids' type), past SQLite's INTEGER, past any, and below.
HUGE = [2**31, 2**63, 99999999999999999999, -(2**63) - 1]


@pytest.mark.parametrize("value", HUGE)
def test_an_id_too_big_for_any_row_in_a_path_or_query_is_refused(
        client: TestClient, db: Session, clinic: Clinic, value: int) -> None:
    token = make_token(db, Role.window, clinic.hospital)
    db.commit()
    for path, params in ((f"/api/v1/appointments/{value}", {}),
                         (f"/api/v1/schedules/{value}/queue", {}),
                         (f"/api/v1/patients/{value}", {}),
                         ("/api/v1/appointments", {"patient_id": str(value)})):
        r = client.get(path, params=params, headers=auth(token))
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.json()["code"] not in ("internal_error", None), (path, r.text)
    # FHIR reads an id no row can have as an unknown resource, on every backend alike.
    r = client.get(f"/fhir/Slot/{value}", headers=auth(token))
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("value", HUGE)
def test_an_id_too_big_in_a_booking_body_is_refused_and_nothing_is_written(
        client: TestClient, db: Session, clinic: Clinic, value: int) -> None:
    patient, _ = clinic.patient(db)
    token = make_token(db, Role.window, clinic.hospital)
    db.commit()
    for path, body in (("/api/v1/appointments", {"schedule_id": value, "patient_id": patient.id,
                                                 "channel": "window"}),
                       ("/api/v1/appointments", {"slot_id": value, "patient_id": patient.id,
                                                 "channel": "window"}),
                       ("/api/v1/holds", {"schedule_id": clinic.schedule.id,
                                          "patient_id": value, "channel": "window"}),
                       ("/api/v1/waitlist", {"schedule_id": value, "patient_id": patient.id,
                                             "channel": "window"})):
        r = client.post(path, json=body, headers={**auth(token), "Idempotency-Key": f"k{value}"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (path, r.text)
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id)) == 0
    assert db.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.patient_id == patient.id)) == 0
