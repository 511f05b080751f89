"""IHE ITI Scheduling over FHIR: $find, $hold, $book and cancellation, all through booking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.identity.rules import Role
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling import waitlist
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import make_department, make_hospital, make_practitioner
from tests.fhir.conftest import CREATED, DAY, OPEN, Clinic, fhir_json, local, patient_session, staff


def _params(**values: Any) -> dict[str, Any]:
    parameter = []
    for name, value in values.items():
        name = name if name.startswith("_") else name.replace("_", "-")
        if isinstance(value, dict) and "resourceType" in value:
            parameter.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            parameter.append({"name": name, "valueReference": value})
        else:
            parameter.append({"name": name, "valueDateTime" if name in ("start", "end")
                              else "valueString": value})
    return {"resourceType": "Parameters", "parameter": parameter}


def _only(bundle: dict[str, Any]) -> dict[str, Any]:
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 1
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    return resource


def _find(client: TestClient, headers: dict[str, str] | None = None,
          **extra: Any) -> list[dict[str, Any]]:
    body = _params(start=local(DAY, 0).isoformat(), end=local(DAY, 23).isoformat(), **extra)
    found = fhir_json(client.post("/fhir/Appointment/$find", json=body, headers=headers))
    return [e["resource"] for e in found["entry"]]


def test_find_needs_start_and_end(client: TestClient, at: object) -> None:
    outcome = fhir_json(client.get("/fhir/Appointment/$find?start=2026-12-14"), 400)
    issue = outcome["issue"][0]
    assert issue["code"] == "invalid" and issue["expression"] == ["end"]
    assert issue["details"]["coding"][0]["code"] == "fhir_invalid_parameter"
    too_long = fhir_json(client.get("/fhir/Appointment/$find?start=2026-12-01&end=2027-03-01"),
                         400)
    assert too_long["issue"][0]["code"] == "too-costly"


def test_find_proposes_only_slots_the_caller_may_book(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    patient, headers = patient_session(db)
    proposals = _find(client, headers, practitioner=f"Practitioner/{clinic.doctor.id}",
                      patient=f"Patient/{patient.id}", _count="100")
    public = [s for s in clinic.schedule.slots if s.pool in ("online", "referral")]
    assert [p["slot"][0]["reference"] for p in proposals] == [f"Slot/{s.id}" for s in public]
    first = proposals[0]
    assert first["status"] == "proposed" and first["id"] == f"proposed-{public[0].id}-{patient.id}"
    assert first["participant"][0]["actor"]["reference"] == f"Patient/{patient.id}"
    assert first["specialty"][0]["text"] == "心血管内科"
    elsewhere = _find(client, specialty="no-such-department")
    assert elsewhere == []
    by_get = fhir_json(client.get(
        "/fhir/Appointment/$find", params={"start": "2026-12-14", "end": "2026-12-14",
                                           "practitioner": clinic.doctor.id}))
    assert by_get["total"] == len(public)  # a date as end means to the end of that day


def test_find_proposes_nothing_of_a_day_whose_booking_is_paused_overnight(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """From the next-day cutoff (20:00) to the same-day opening (07:00) the engine refuses
    every booking of the day (pool_closed): $find proposes none of its slots then, and
    just before and after the pause it proposes what it always did."""
    patient, headers = patient_session(db)
    mine = {"practitioner": f"Practitioner/{clinic.doctor.id}",
            "patient": f"Patient/{patient.id}", "_count": "100"}
    public = [f"Slot/{s.id}" for s in clinic.schedule.slots if s.pool in ("online", "referral")]

    def proposed_slots() -> list[str]:
        return [p["slot"][0]["reference"] for p in _find(client, headers, **mine)]

    at(local(DAY - timedelta(days=1), 19, 59))
    assert proposed_slots() == public
    at(local(DAY - timedelta(days=1), 20))
    assert proposed_slots() == []
    refused = client.post("/fhir/Appointment/$book", headers=headers, json=_params(
        appointment_reference={"reference": f"Appointment/proposed-{public[0][5:]}"}))
    assert fhir_json(refused, 409)["issue"][0]["details"]["coding"][0]["code"] == "pool_closed"
    at(local(DAY, 6, 59))
    assert proposed_slots() == []
    at(local(DAY, 7))
    assert proposed_slots() == public


def test_find_follows_each_hospitals_own_booking_calendar(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """The pause is each hospital's policy, read as the engine reads it: a hospital that
    closes advance booking at 18:00 proposes nothing of tomorrow at 19:00, while one on the
    default 20:00 still does; the day after tomorrow is never paused."""
    scheduling_service.set_policy(db, hospital=clinic.hospital,
                                  pools={"next_day_cutoff": "18:00"})
    after = clinic.session(db, day=DAY + timedelta(days=1))
    other = make_hospital(db, level="tertiary")
    dept = make_department(db, other, name="心血管内科")
    doctor = make_practitioner(db, other, dept, service_level="expert")
    theirs = scheduling_service.create_schedule(
        db, hospital=other, department=dept, day=DAY, session=SessionOfDay.am,
        practitioner=doctor, capacity=10, slot_minutes=6, now=CREATED)
    at(local(DAY - timedelta(days=1), 19))
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDateTime": local(DAY, 0).isoformat()},
        {"name": "end", "valueDateTime": local(DAY + timedelta(days=1), 23).isoformat()},
        {"name": "organization", "valueString": f"Organization/{clinic.hospital.id}"},
        {"name": "organization", "valueString": f"Organization/{other.id}"},
        {"name": "_count", "valueString": "100"}]}
    found = fhir_json(client.post("/fhir/Appointment/$find", json=body))
    slot_ids = {int(e["resource"]["slot"][0]["reference"].split("/")[1])
                for e in found["entry"]}
    schedule_of = {s.id: schedule.id for schedule in (clinic.schedule, after, theirs)
                   for s in schedule.slots}
    assert {schedule_of[i] for i in slot_ids} == {after.id, theirs.id}


def test_hold_then_book_confirms_and_the_slot_follows(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """ITI-116 then ITI-117: the slot is busy-tentative while held, busy once booked."""
    patient, headers = patient_session(db)
    proposal = _find(client, headers, practitioner=f"Practitioner/{clinic.doctor.id}",
                     patient=f"Patient/{patient.id}")[0]
    held = _only(fhir_json(client.post("/fhir/Appointment/$hold", headers=headers, json=_params(
        appointment_reference={"reference": f"Appointment/{proposal['id']}"}))))
    assert held["status"] == "pending" and held["slot"] == proposal["slot"]
    slot = proposal["slot"][0]["reference"]
    assert fhir_json(client.get(f"/fhir/{slot}"))["status"] == "busy-tentative"

    booked = _only(fhir_json(client.post("/fhir/Appointment/$book", headers=headers,
                                         json=_params(appointment_reference={
                                             "reference": f"Appointment/{held['id']}"}))))
    assert booked["id"] == held["id"] and booked["status"] == "booked"
    assert fhir_json(client.get(f"/fhir/{slot}"))["status"] == "busy"
    read = fhir_json(client.get(f"/fhir/Appointment/{booked['id']}", headers=headers))
    assert read["status"] == "booked" and read["start"] == proposal["start"]
    mine = fhir_json(client.get(f"/fhir/Appointment?patient=Patient/{patient.id}&date=2026-12-14"
                                "&_include=Appointment:slot", headers=headers))
    assert [e["resource"]["id"] for e in mine["entry"] if e["search"]["mode"] == "match"] \
        == [booked["id"]]
    assert fhir_json(client.get(f"/fhir/Appointment?patient={patient.id}&date=2026-12-15",
                                headers=headers))["total"] == 0


def test_book_is_idempotent_and_limits_hold(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """BK-8: the same Idempotency-Key books once; one appointment per schedule per patient."""
    patient, headers = patient_session(db)
    proposals = _find(client, headers, practitioner=f"Practitioner/{clinic.doctor.id}",
                      patient=f"Patient/{patient.id}")
    body = _params(appointment_reference={"reference": f"Appointment/{proposals[0]['id']}"})
    keyed = {**headers, "Idempotency-Key": "fhir-book-1"}
    first = client.post("/fhir/Appointment/$book", headers=keyed, json=body)
    again = client.post("/fhir/Appointment/$book", headers=keyed, json=body)
    assert _only(fhir_json(first))["id"] == _only(fhir_json(again))["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id)) == 1

    second = client.post("/fhir/Appointment/$book", headers=headers, json=_params(
        appointment_reference={"reference": f"Appointment/{proposals[1]['id']}"}))
    issue = fhir_json(second, 409)["issue"][0]
    assert issue["code"] == "business-rule"
    assert issue["details"]["coding"][0]["code"] == "limit_reached"


def test_patients_cannot_book_window_slots_and_unknown_roles_cannot_book(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    window_slot = next(s for s in clinic.schedule.slots if s.pool == "window")
    patient, headers = patient_session(db)
    resource = {"resourceType": "Appointment", "status": "pending",
                "slot": [{"reference": f"Slot/{window_slot.id}"}],
                "participant": [{"actor": {"reference": f"Patient/{patient.id}"},
                                 "status": "needs-action"}]}
    closed = fhir_json(client.post("/fhir/Appointment/$book", headers=headers,
                                   json=_params(appointment_resource=resource)), 409)
    assert closed["issue"][0]["details"]["coding"][0]["code"] == "pool_closed"
    regulator = staff(db, Role.regulator, None)
    refused = fhir_json(client.post("/fhir/Appointment/$book", headers=regulator,
                                    json=_params(appointment_resource=resource)), 403)
    assert refused["issue"][0]["details"]["coding"][0]["code"] == "channel_not_allowed"
    signed_out = fhir_json(client.post("/fhir/Appointment/$book",
                                       json=_params(appointment_resource=resource)), 401)
    assert signed_out["issue"][0]["code"] == "login"
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.slot_id == window_slot.id)) == 0


def test_window_clerk_books_a_window_slot_and_cancels_it_bk6(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """BK-6: cancelled through $book (status cancelled); the slot is free again."""
    at(local(DAY, 7, 30))  # the window pool opens on the day
    window_slot = next(s for s in clinic.schedule.slots if s.pool == "window")
    patient, _headers = patient_session(db)
    clerk = staff(db, Role.window, clinic.hospital)
    booked = _only(fhir_json(client.post("/fhir/Appointment/$book", headers=clerk, json=_params(
        appointment_reference={"reference": f"Appointment/proposed-{window_slot.id}"},
        patient={"reference": f"Patient/{patient.id}"}))))
    assert booked["status"] == "booked"
    appt = db.get_one(Appointment, int(booked["id"]))
    assert appt.channel == "window" and appt.booked_by.startswith("window:")

    cancelled = _only(fhir_json(client.post("/fhir/Appointment/$book", headers=clerk,
                                            json=_params(appointment_resource={
                                                "resourceType": "Appointment",
                                                "id": booked["id"], "status": "cancelled",
                                                "cancelationReason": {"text": "患者改期"},
                                                "participant": [{"status": "declined"}]}))))
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["text"] == "患者改期"
    slot = fhir_json(client.get(f"/fhir/Slot/{window_slot.id}", headers=clerk))
    assert slot["status"] == "free"
    again = fhir_json(client.post("/fhir/Appointment/$book", headers=clerk, json=_params(
        appointment_resource={"resourceType": "Appointment", "id": booked["id"],
                              "status": "cancelled", "participant": [{"status": "declined"}]})),
        409)
    assert again["issue"][0]["details"]["coding"][0]["code"] == "not_cancellable"


def test_waitlist_entries_are_appointments_with_status_waitlist(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """BK-6 候补: a patient waiting for a full session sees it among its appointments."""
    schedule = clinic.session(db, capacity=1, session=SessionOfDay.pm)
    _first, first_headers = patient_session(db)
    fhir_json(client.post("/fhir/Appointment/$book", headers=first_headers, json=_params(
        appointment_reference={"reference": f"Appointment/proposed-{schedule.slots[0].id}"})))
    waiting, headers = patient_session(db)
    entry = waitlist.join(db, principal=clinic.patient_principal(waiting.id),
                          patient_id=waiting.id, schedule_id=schedule.id, channel=Channel.app,
                          now=OPEN)
    found = fhir_json(client.get("/fhir/Appointment?status=waitlist", headers=headers))
    assert [e["resource"]["id"] for e in found["entry"]] == [f"waitlist-{entry.id}"]
    read = fhir_json(client.get(f"/fhir/Appointment/waitlist-{entry.id}", headers=headers))
    assert read["status"] == "waitlist"
    assert read["start"] == "2026-12-14T13:30:00+08:00"
    assert fhir_json(client.get(f"/fhir/Appointment/waitlist-{entry.id}",
                                headers=first_headers), 403)["issue"][0]["code"] == "forbidden"


def test_bk8_rate_limit_holds_for_fhir_bookings(
        client: TestClient, at: object, clinic: Clinic, db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """BK-8: booking attempts over FHIR count against the same per-account limit."""
    monkeypatch.setattr(get_settings(), "booking_rate_per_account", 2)
    patient, headers = patient_session(db)
    free = [s for s in clinic.schedule.slots if s.pool in ("online", "referral")]
    codes = []
    for slot in free[:3]:
        response = client.post("/fhir/Appointment/$hold", headers=headers, json=_params(
            appointment_reference={"reference": f"Appointment/proposed-{slot.id}"}))
        codes.append(response.status_code)
    assert codes[:2] == [200, 409]  # the second is refused by the per-schedule limit
    throttled = fhir_json(client.post("/fhir/Appointment/$hold", headers=headers, json=_params(
        appointment_reference={"reference": f"Appointment/proposed-{free[3].id}"})), 429)
    assert throttled["issue"][0]["code"] == "throttled"
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id)) == 1
