"""The booking REST API: codes, idempotency, who may book for whom (BK-1, BK-8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.scheduling.models import Appointment
from tests.factories import auth, make_token
from tests.scheduling.conftest import DAY, Clinic, Clock, local
from tests.scheduling.test_waitlist import ONLINE_ONLY, full_session


@pytest.fixture
def window(db: Session, clinic: Clinic) -> dict[str, str]:
    return auth(make_token(db, Role.window, clinic.hospital))


def test_schedules_list_shows_available_per_pool(client: TestClient, clock: Clock,
                                                  clinic: Clinic) -> None:
    r = client.get("/api/v1/schedules", params={"hospital": clinic.hospital.code,
                                                "date": DAY.isoformat()})
    assert r.status_code == 200
    (s,) = r.json()
    assert s["id"] == clinic.schedule.id and s["session"] == "am" and s["status"] == "open"
    # Two days before, referral slots have returned to the online pool; the window pool
    # opens on the day.
    assert s["available"] == {"online": 9}
    clock.now = local(DAY - timedelta(days=8), 9)
    s = client.get("/api/v1/schedules", params={"hospital": clinic.hospital.code,
                                                "date": DAY.isoformat()}).json()[0]
    assert s["available"] == {"referral": 4}


def test_schedules_list_shows_nothing_bookable_during_the_overnight_pause(
        client: TestClient, clock: Clock, clinic: Clinic) -> None:
    # From the next-day cutoff (20:00) to the same-day opening (07:00) the engine refuses
    # every booking of the day: the list says so instead of offering slots.
    params = {"hospital": clinic.hospital.code, "date": DAY.isoformat()}
    clock.now = local(DAY - timedelta(days=1), 21)
    s = client.get("/api/v1/schedules", params=params).json()[0]
    assert s["available"] == {}
    assert s["booking_reopens_at"].startswith(f"{DAY.isoformat()}T07:00:00")
    clock.now = local(DAY, 7)
    s = client.get("/api/v1/schedules", params=params).json()[0]
    assert s["available"] and s["booking_reopens_at"] is None


def test_slot_list_offers_nothing_during_the_overnight_pause(
        client: TestClient, clock: Clock, clinic: Clinic) -> None:
    # The slot list agrees with the schedules list and the engine: between the next-day
    # cutoff and the same-day opening no slot of the day can be booked, so none is offered.
    path = f"/api/v1/schedules/{clinic.schedule.id}/slots"
    clock.now = local(DAY - timedelta(days=1), 21)
    paused = client.get(path, params={"channel": "web"})
    assert paused.status_code == 200 and paused.json() == []
    clock.now = local(DAY, 7)
    opened = client.get(path, params={"channel": "web"}).json()
    assert len(opened) == 9 and all(s["pool"] == "online" for s in opened)


def test_window_books_with_idempotency_key(client: TestClient, clock: Clock, clinic: Clinic,
                                           window: dict[str, str], db: Session) -> None:
    patient, _ = clinic.patient(db)
    body = {"schedule_id": clinic.schedule.id, "patient_id": patient.id, "channel": "window"}
    headers = {**window, "Idempotency-Key": "k-123"}
    first = client.post("/api/v1/appointments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "booked" and first.json()["start"].endswith("+08:00")
    again = client.post("/api/v1/appointments", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    count = db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id))
    assert count == 1
    other = client.post("/api/v1/appointments", json={**body, "channel": "phone"},
                        headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_conflicts_have_stable_codes(client: TestClient, clock: Clock, clinic: Clinic,
                                     window: dict[str, str], db: Session) -> None:
    a, _ = clinic.patient(db)
    b, _ = clinic.patient(db)
    slot = next(s for s in clinic.schedule.slots if s.pool == "online")
    ok = client.post("/api/v1/appointments", headers=window,
                     json={"slot_id": slot.id, "patient_id": a.id, "channel": "window"})
    assert ok.status_code == 201
    taken = client.post("/api/v1/appointments", headers=window,
                        json={"slot_id": slot.id, "patient_id": b.id, "channel": "window"})
    assert taken.status_code == 409 and taken.json()["code"] == "slot_taken"
    assert taken.json()["message"] == "该号源已被预约"
    twice = client.post("/api/v1/appointments", headers=window,
                        json={"schedule_id": clinic.schedule.id, "patient_id": a.id,
                              "channel": "window"})
    assert twice.status_code == 409 and twice.json()["code"] == "limit_reached"


def test_bad_input_is_422_and_writes_nothing(client: TestClient, clock: Clock, clinic: Clinic,
                                             window: dict[str, str], db: Session) -> None:
    patient, _ = clinic.patient(db)
    cases = [
        {"patient_id": patient.id, "channel": "window"},
        {"schedule_id": clinic.schedule.id, "slot_id": 1, "patient_id": patient.id,
         "channel": "window"},
        {"schedule_id": clinic.schedule.id, "patient_id": patient.id, "channel": "fax"},
        {"schedule_id": "x", "patient_id": patient.id, "channel": "window"},
    ]
    for body in cases:
        r = client.post("/api/v1/appointments", json=body, headers=window)
        assert r.status_code == 422, body
        assert r.json()["code"] == "invalid_request"
    unknown = client.post("/api/v1/appointments", headers=window,
                          json={"schedule_id": 10**9, "patient_id": patient.id,
                                "channel": "window"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "schedule_not_found"
    nobody = client.post("/api/v1/appointments", headers=window,
                         json={"schedule_id": clinic.schedule.id, "patient_id": 10**9,
                               "channel": "window"})
    assert nobody.status_code == 404 and nobody.json()["code"] == "patient_not_found"
    assert nobody.json()["message"] == "未找到该就诊人"
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.schedule_id == clinic.schedule.id)) == 0


def test_signed_out_and_wrong_roles_are_refused(client: TestClient, clock: Clock,
                                                clinic: Clinic, db: Session) -> None:
    patient, _ = clinic.patient(db)
    body = {"schedule_id": clinic.schedule.id, "patient_id": patient.id, "channel": "window"}
    assert client.post("/api/v1/appointments", json=body).status_code == 401
    regulator = auth(make_token(db, Role.regulator))
    r = client.post("/api/v1/appointments", json=body, headers=regulator)
    assert r.status_code == 403
    kiosk = auth(make_token(db, Role.kiosk, clinic.hospital))
    r = client.post("/api/v1/appointments", json=body, headers=kiosk)
    assert r.status_code == 403 and r.json()["code"] == "channel_not_allowed"


def test_hold_confirm_cancel_and_list(client: TestClient, clock: Clock, clinic: Clinic,
                                      window: dict[str, str], db: Session) -> None:
    patient, _ = clinic.patient(db)
    body = {"schedule_id": clinic.schedule.id, "patient_id": patient.id, "channel": "window"}
    held = client.post("/api/v1/holds", json=body, headers=window).json()
    assert held["status"] == "held" and held["hold_expires_at"]
    booked = client.post(f"/api/v1/appointments/{held['id']}/confirm", headers=window).json()
    assert booked["status"] == "booked"
    listed = client.get("/api/v1/appointments", params={"patient_id": patient.id},
                        headers=window).json()
    assert [a["id"] for a in listed] == [held["id"]]
    cancelled = client.post(f"/api/v1/appointments/{held['id']}/cancel", headers=window,
                            json={"reason": "患者来电取消"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/appointments/{held['id']}/cancel", headers=window)
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"


def test_stop_clinic_api_returns_each_patients_offer(client: TestClient, clock: Clock,
                                                     clinic: Clinic, window: dict[str, str],
                                                     db: Session) -> None:
    for _ in range(3):
        p, _ = clinic.patient(db)
        client.post("/api/v1/appointments", headers=window,
                    json={"schedule_id": clinic.schedule.id, "patient_id": p.id,
                          "channel": "window"})
    r = client.post(f"/api/v1/schedules/{clinic.schedule.id}/stop", headers=window,
                    json={"reason": "医生临时出诊任务"})
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    assert len(r.json()["offers"]) == 3
    r = client.post(f"/api/v1/schedules/{clinic.schedule.id}/stop", headers=window,
                    json={"reason": "again"})
    assert r.status_code == 409 and r.json()["code"] == "schedule_stopped"


def test_policy_api_validates_the_floors(client: TestClient, clinic: Clinic,
                                         db: Session) -> None:
    admin = auth(make_token(db, Role.hospital_admin, clinic.hospital))
    url = f"/api/v1/hospitals/{clinic.hospital.code}/booking-policy"
    r = client.put(url, headers=admin, json={"pools": {"online_share": 0.5}})
    assert r.status_code == 422 and r.json()["code"] == "policy_invalid"
    assert "80%" in r.json()["message"]
    r = client.put(url, headers=admin, json={"pools": {"online_share": 0.9},
                                             "penalty": {"window_days": 90,
                                                         "thresholds": {"3": 90}}})
    assert r.status_code == 200 and r.json()["penalty"]["thresholds"] == {"3": 90}
    # Public to read (patients see the rules), never to change.
    assert client.get(url).json()["pools"]["online_share"] == 0.9
    assert client.put(url, json={"pools": {"online_share": 1.0}}).status_code == 401
    assert client.get(url).json()["pools"]["online_share"] == 0.9


def test_bk8_booking_attempts_are_rate_limited_per_account(
        client: TestClient, clock: Clock, clinic: Clinic, window: dict[str, str], db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onetrip.config import get_settings

    monkeypatch.setattr(get_settings(), "booking_rate_per_account", 3)
    codes = []
    for _ in range(5):
        p, _ = clinic.patient(db)
        codes.append(client.post("/api/v1/appointments", headers=window, json={
            "schedule_id": clinic.schedule.id, "patient_id": p.id,
            "channel": "window"}).status_code)
    assert codes == [201, 201, 201, 429, 429]
    clock.now += timedelta(minutes=1)
    p, _ = clinic.patient(db)
    assert client.post("/api/v1/appointments", headers=window, json={
        "schedule_id": clinic.schedule.id, "patient_id": p.id,
        "channel": "window"}).status_code == 201


def test_bk8_the_account_limit_counts_every_sign_in_of_the_account(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing in again (a new session) does not buy a scalper another allowance: the
    attempts of every session of one phone account count together, through the API and
    the pages."""
    from onetrip.config import get_settings
    from onetrip.identity import auth as identity_auth
    from onetrip.identity.models import Account
    from onetrip.identity.rules import Relationship
    from tests.factories import make_account, make_patient
    from tests.scheduling.conftest import chinese_name

    monkeypatch.setattr(get_settings(), "booking_rate_per_account", 3)
    holder = make_account(db)
    p = make_patient(db, principal=holder, relationship=Relationship.self_, name=chinese_name())
    account = db.get_one(Account, holder.account_id)
    first, second = (auth(identity_auth.start_session(db, account=account)) for _ in range(2))
    body = {"schedule_id": 999_999, "patient_id": p.id, "channel": "app"}  # books nothing
    codes = [client.post("/api/v1/appointments", json=body, headers=h).status_code
             for h in (first, first, second, second)]
    assert codes == [404, 404, 404, 429]
    # Another account at the same address still has its own allowance.
    other = make_account(db)
    q = make_patient(db, principal=other, relationship=Relationship.self_, name=chinese_name())
    fresh = auth(identity_auth.start_session(db, account=db.get_one(Account, other.account_id)))
    assert client.post("/api/v1/appointments", headers=fresh, json={
        **body, "patient_id": q.id}).status_code == 404


def test_bk8_booking_attempts_are_rate_limited_per_client_address(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onetrip.config import get_settings

    # Many accounts behind one address (a scalper's bot farm) share the address's limit.
    monkeypatch.setattr(get_settings(), "booking_rate_per_address", 2)
    codes = []
    for _ in range(3):
        p, _ = clinic.patient(db)
        token = auth(make_token(db, Role.window, clinic.hospital))
        codes.append(client.post("/api/v1/appointments", headers=token, json={
            "schedule_id": clinic.schedule.id, "patient_id": p.id,
            "channel": "window"}).status_code)
    assert codes == [201, 201, 429]


def test_waitlist_api_shows_each_place_in_line_and_lets_a_patient_leave(
        client: TestClient, clock: Clock, clinic: Clinic, window: dict[str, str],
        db: Session) -> None:
    clock.now = ONLINE_ONLY
    full_session(db, clinic)
    (p, _), (q, _) = clinic.patient(db), clinic.patient(db)
    first, second = (client.post("/api/v1/waitlist", headers=window, json={
        "schedule_id": clinic.schedule.id, "patient_id": pid, "channel": "window"}).json()
        for pid in (p.id, q.id))
    assert (first["position"], second["position"]) == (0, 1)
    left = client.post(f"/api/v1/waitlist/{first['id']}/cancel", headers=window)
    assert left.status_code == 200
    assert left.json()["status"] == "cancelled" and left.json()["position"] is None
    listed = client.get("/api/v1/waitlist", params={"patient_id": q.id}, headers=window)
    assert [(e["id"], e["position"]) for e in listed.json()] == [(second["id"], 0)]
    again = client.post(f"/api/v1/waitlist/{first['id']}/cancel", headers=window)
    assert again.status_code == 409 and again.json()["code"] == "waitlist_unavailable"
