"""Every booking-like POST takes an Idempotency-Key (BK-8, issue 4 item 4): confirming a
hold, taking a waitlist offer and accepting a rebooking offer answer a retry with the same
key and body with the first answer, and another body under the key with 422."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from tests.factories import auth, make_practitioner, make_token
from tests.scheduling.conftest import DAY, Clinic, Clock


@pytest.fixture
def window(db: Session, clinic: Clinic) -> dict[str, str]:
    return auth(make_token(db, Role.window, clinic.hospital))


def replayed(client: TestClient, url: str, headers: dict[str, str],
             body: dict[str, object] | None = None) -> dict[str, object]:
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    return first.json()


def test_bk6_a_retried_rebooking_accept_gets_the_same_answer(
        client: TestClient, clock: Clock, clinic: Clinic, window: dict[str, str],
        db: Session) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=2), doctor=colleague)
    p, _ = clinic.patient(db)
    client.post("/api/v1/appointments", headers=window,
                json={"schedule_id": clinic.schedule.id, "patient_id": p.id,
                      "channel": "window"})
    offers = client.post(f"/api/v1/schedules/{clinic.schedule.id}/stop", headers=window,
                         json={"reason": "专家外出会诊"}).json()["offers"]
    offer = offers[0]
    url = f"/api/v1/rebooking-offers/{offer['id']}/accept"
    headers = {**window, "Idempotency-Key": "rebook-1"}
    got = replayed(client, url, headers, {"slot_id": offer["slot_ids"][0]})
    assert got["status"] == "booked"
    other = client.post(url, json={"slot_id": offer["slot_ids"][-1] + 1}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_bk8_a_retried_confirm_and_waitlist_accept_get_the_same_answer(
        client: TestClient, clock: Clock, clinic: Clinic, window: dict[str, str],
        db: Session) -> None:
    p, _ = clinic.patient(db)
    held = client.post("/api/v1/holds", headers=window,
                       json={"schedule_id": clinic.schedule.id, "patient_id": p.id,
                             "channel": "window"}).json()
    replayed(client, f"/api/v1/appointments/{held['id']}/confirm",
             {**window, "Idempotency-Key": "confirm-1"})
    booked = [held]
    while True:
        q, _ = clinic.patient(db)
        r = client.post("/api/v1/appointments", headers=window,
                        json={"schedule_id": clinic.schedule.id, "patient_id": q.id,
                              "channel": "window"})
        if r.status_code != 201:
            break
        booked.append(r.json())
    waiting, _ = clinic.patient(db)
    entry = client.post("/api/v1/waitlist", headers=window,
                        json={"schedule_id": clinic.schedule.id, "patient_id": waiting.id,
                              "channel": "window"})
    assert entry.status_code == 201, entry.text
    client.post(f"/api/v1/appointments/{booked[0]['id']}/cancel", headers=window)
    got = replayed(client, f"/api/v1/waitlist/{entry.json()['id']}/accept",
                   {**window, "Idempotency-Key": "wait-1"})
    assert got["status"] == "booked" and got["patient_id"] == waiting.id
