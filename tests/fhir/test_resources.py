"""FHIR reads and searches: every resource validates with the fhir.resources models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.org import service as org_service
from onetrip.org.models import MedicalAlliance
from onetrip.scheduling.rules import SessionOfDay
from tests.factories import make_hospital, make_practitioner
from tests.fhir.conftest import DAY, Clinic, fhir_json, local, patient_session, staff


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_metadata_states_r4_and_the_ihe_operations(client: TestClient) -> None:
    cs = fhir_json(client.get("/fhir/metadata"))
    assert cs["fhirVersion"] == "4.0.1" and cs["kind"] == "instance"
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert {"Patient", "Slot", "Schedule", "Appointment", "Location"} <= set(resources)
    assert [op["name"] for op in resources["Appointment"]["operation"]] == ["find", "hold", "book"]
    assert "status" in {p["name"] for p in resources["Slot"]["searchParam"]}


def test_directory_of_the_demo_region_reads_and_searches(client: TestClient, db: Session) -> None:
    orgs = fhir_json(client.get("/fhir/Organization?identifier=sfsrmyy"))
    assert orgs["total"] == 1
    org = orgs["entry"][0]["resource"]
    assert org["name"] == "示范市人民医院" and org["telecom"][0]["value"] == "0575-88000120"
    assert fhir_json(client.get(f"/fhir/Organization/{org['id']}"))["name"] == org["name"]

    site = fhir_json(client.get(f"/fhir/Location/site-{org['id']}"))
    assert site["address"]["line"] == ["示范市解放路88号"]
    rooms = fhir_json(client.get(f"/fhir/Location?organization=Organization/{org['id']}"))
    assert rooms["total"] > 1
    assert all(e["resource"]["managingOrganization"]["reference"] == f"Organization/{org['id']}"
               for e in rooms["entry"])

    cardiology = fhir_json(client.get(f"/fhir/HealthcareService?organization={org['id']}"
                                      "&specialty=xxgnk"))
    assert cardiology["total"] == 1
    service = cardiology["entry"][0]["resource"]
    assert service["name"] == "心血管内科"

    roles = fhir_json(client.get(f"/fhir/PractitionerRole?service=HealthcareService/"
                                 f"{service['id']}&_include=PractitionerRole:practitioner"))
    doctors = {e["resource"]["id"] for e in roles["entry"] if e["search"]["mode"] == "include"
               and e["resource"]["resourceType"] == "Practitioner"}
    assert len(doctors) == roles["total"] >= 3
    one = roles["entry"][0]["resource"]
    assert fhir_json(client.get(f"/fhir/PractitionerRole/{one['id']}"))["id"] == one["id"]
    name = one["practitioner"]["display"]
    found = fhir_json(client.get("/fhir/Practitioner", params={"name": name}))
    assert one["practitioner"]["reference"].split("/")[1] in _ids(found)


def test_bk3_slot_search_by_schedule_start_and_status_with_paging(
        client: TestClient, at: object, clinic: Clinic) -> None:
    """BK-3: minute-precise slots; free means open to the public online pool (BK-2/BK-4)."""
    schedule = clinic.schedule
    base = f"/fhir/Slot?schedule=Schedule/{schedule.id}"
    everything = fhir_json(client.get(base + "&_count=100"))
    assert everything["total"] == len(schedule.slots) == 10
    starts = [e["resource"]["start"] for e in everything["entry"]]
    assert starts[0] == "2026-12-14T08:00:00+08:00" and starts[1] == "2026-12-14T08:06:00+08:00"
    assert everything["entry"][0]["resource"]["end"] == "2026-12-14T08:06:00+08:00"

    # Two days ahead the referral share has returned to the online pool; the window,
    # priority and clinic positions are not open to the public.
    public = {str(s.id) for s in schedule.slots if s.pool in ("online", "referral")}
    free = fhir_json(client.get(base + "&status=free&_count=100"))
    assert set(_ids(free)) == public
    unavailable = fhir_json(client.get(base + "&status=busy-unavailable&_count=100"))
    assert set(_ids(unavailable)) == {str(s.id) for s in schedule.slots} - public
    assert all(e["resource"]["extension"][0]["url"].endswith("booking-deep-link")
               for e in free["entry"])

    later = fhir_json(client.get(base + f"&start=ge{local(DAY, 8, 30).isoformat()}"
                                 "&_include=Slot:schedule"))
    assert [e["resource"]["start"][11:16] for e in later["entry"]
            if e["search"]["mode"] == "match"] == ["08:30", "08:36", "08:42", "08:48", "08:54"]
    assert [e["resource"]["resourceType"] for e in later["entry"]
            if e["search"]["mode"] == "include"] == ["Schedule"]

    pages, url = [], base + "&_count=4"
    while url:
        page = fhir_json(client.get(url))
        pages.append(_ids(page))
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), "")
    assert [len(p) for p in pages] == [4, 4, 2]
    assert [i for p in pages for i in p] == _ids(everything)


def test_slots_of_a_day_whose_booking_is_paused_are_busy_unavailable(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """In the overnight pause (20:00 to 07:00 before the day) no channel can book the day,
    the window included: its open slots are ``busy-unavailable`` to everyone; a booked
    slot stays ``busy``. At the same-day opening they are free again."""
    booked = clinic.book(db, clinic.patient(db)[0].id)
    base = f"/fhir/Slot?schedule=Schedule/{clinic.schedule.id}&_count=100"
    clerk = staff(db, Role.window, clinic.hospital)
    at(local(DAY - timedelta(days=1), 21))
    assert fhir_json(client.get(base + "&status=free"))["total"] == 0
    assert fhir_json(client.get(base + "&status=free", headers=clerk))["total"] == 0
    statuses = {e["resource"]["id"]: e["resource"]["status"]
                for e in fhir_json(client.get(base))["entry"]}
    assert statuses.pop(str(booked.slot_id)) == "busy"
    assert set(statuses.values()) == {"busy-unavailable"}
    online = next(s for s in clinic.schedule.slots if s.pool == "online"
                  and s.id != booked.slot_id)
    assert fhir_json(client.get(f"/fhir/Slot/{online.id}"))["status"] == "busy-unavailable"
    at(local(DAY, 7))
    assert fhir_json(client.get(f"/fhir/Slot/{online.id}"))["status"] == "free"
    assert fhir_json(client.get(base + "&status=free", headers=clerk))["total"] == 9


def test_bk5_priority_slots_are_free_to_the_window_only(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """BK-5: the priority quota for the elderly, disabled and service members."""
    schedule = clinic.session(db, capacity=40, session=SessionOfDay.pm)
    priority = {str(s.id) for s in schedule.slots if s.pool == "priority"}
    assert priority
    url = f"/fhir/Slot?schedule={schedule.id}&status=free&_count=100"
    window = fhir_json(client.get(url, headers=staff(db, Role.window, clinic.hospital)))
    assert priority <= set(_ids(window))
    assert not priority & set(_ids(fhir_json(client.get(url))))


def test_bk4_referral_slots_are_free_only_to_alliance_clinics_before_they_return(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """BK-4: released 10 days ahead to primary-care clinics; public only after return."""
    alliance = MedicalAlliance(region_id=clinic.hospital.region_id, code="fhir-yt",
                               name="测试医联体")
    db.add(alliance)
    db.flush()
    clinic.hospital.alliance_id = alliance.id
    primary = make_hospital(db, level="primary", kind="primary_care", alliance_id=alliance.id)
    make_practitioner(db, primary)
    at(local(DAY - timedelta(days=8), 10))
    referral = {str(s.id) for s in clinic.schedule.slots if s.pool == "referral"}
    url = f"/fhir/Slot?schedule={clinic.schedule.id}&status=free&_count=100"
    assert _ids(fhir_json(client.get(url))) == []
    doctor = fhir_json(client.get(url, headers=staff(db, Role.doctor, primary)))
    assert set(_ids(doctor)) == referral


def test_patient_is_masked_and_read_only_by_who_may(client: TestClient, db: Session) -> None:
    patient, own = patient_session(db)
    body = fhir_json(client.get(f"/fhir/Patient/{patient.id}", headers=own))
    number = identity_service.document_number(patient.documents[0])
    text = client.get(f"/fhir/Patient/{patient.id}", headers=own).text
    assert number not in text and number[-4:] in body["identifier"][0]["value"]
    assert body["identifier"][0]["value"] == number[:6] + "*" * 8 + number[-4:]
    assert "****" in body["telecom"][0]["value"]
    assert body["meta"]["security"][0]["code"] == "MASKED"

    _other, stranger = patient_session(db)
    denied = fhir_json(client.get(f"/fhir/Patient/{patient.id}", headers=stranger), 403)
    assert denied["resourceType"] == "OperationOutcome"
    assert denied["issue"][0]["code"] == "forbidden"
    signed_out = client.get(f"/fhir/Patient/{patient.id}")
    assert fhir_json(signed_out, 401)["issue"][0]["code"] == "login"
    assert signed_out.headers["www-authenticate"].startswith("Bearer")
    mine = fhir_json(client.get("/fhir/Patient", headers=own))
    assert _ids(mine) == [str(patient.id)]


def test_patient_search_by_identity_number_goes_through_the_body_only(
        client: TestClient, db: Session) -> None:
    patient, _own = patient_session(db)
    number = identity_service.document_number(patient.documents[0])
    clerk = staff(db, Role.window, org_service.access_hospital(db, "sfsrmyy"))
    system = "urn:onetrip:document:resident_id_card"
    refused = client.get("/fhir/Patient", params={"identifier": f"{system}|{number}"},
                         headers=clerk)
    outcome = fhir_json(refused, 400)
    assert outcome["issue"][0]["code"] == "not-supported"
    assert number not in refused.text
    found = fhir_json(client.post("/fhir/Patient/_search",
                                  data={"identifier": f"{system}|{number}"}, headers=clerk))
    assert _ids(found) == [str(patient.id)]
    _p, own = patient_session(db)
    assert fhir_json(client.post("/fhir/Patient/_search", data={
        "identifier": f"{system}|{number}"}, headers=own), 403)["issue"][0]["code"] == "forbidden"


def test_unknown_types_and_ids_answer_operation_outcomes(client: TestClient) -> None:
    outcome = fhir_json(client.get("/fhir/Observation"), 404)
    assert outcome["issue"][0]["code"] == "not-supported"
    missing = fhir_json(client.get("/fhir/Slot/999999999"), 404)
    assert missing["issue"][0]["code"] == "not-found"
    assert missing["issue"][0]["details"]["coding"][0]["code"] == "fhir_resource_not_found"
    bad = fhir_json(client.get("/fhir/Slot?start=ge2026-13-45"), 400)
    assert bad["issue"][0]["code"] == "invalid" and bad["issue"][0]["expression"] == ["start"]
