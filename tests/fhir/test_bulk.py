"""SMART Scheduling Links: the manifest and its NDJSON files, as a slot-discovery client
reads them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.fhir.resources import BOOKING_PHONE, DEEP_LINK
from onetrip.scheduling import booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Schedule
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import make_hospital
from tests.fhir.conftest import CREATED, DAY, Clinic, local, patient_session, valid

# The fields the Slot Publisher API requires of each line.
REQUIRED = {"Location": {"resourceType", "id", "name", "telecom", "address"},
            "Schedule": {"resourceType", "id", "actor", "serviceType"},
            "Slot": {"resourceType", "id", "schedule", "status", "start", "end"}}
ADDRESS = {"line", "city", "state", "postalCode"}


def _lines(client: TestClient, url: str) -> list[dict[str, Any]]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    assert "max-age=" in response.headers["cache-control"]
    out = []
    for line in response.text.splitlines():
        resource = json.loads(line)  # each line is a whole, minified resource
        assert line == json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        out.append(valid(resource))
    return out


def _manifest(client: TestClient, query: str = "") -> dict[str, Any]:
    response = client.get("/fhir/$bulk-publish" + query)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    manifest: dict[str, Any] = response.json()
    assert manifest["request"].endswith("/fhir/$bulk-publish" + query)
    assert manifest["transactionTime"] and manifest["error"] == []
    return manifest


def _files(manifest: dict[str, Any], kind: str) -> list[str]:
    return [o["url"].removeprefix("http://testserver") for o in manifest["output"]
            if o["type"] == kind]


def _listed(clinic: Clinic) -> None:
    clinic.hospital.phone, clinic.hospital.address = "0575-88001234", "示范市测试路1号"
    clinic.hospital.postal_code, clinic.hospital.region.province = "312000", "浙江省"


def test_manifest_and_files_carry_what_the_spec_requires(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    unlisted = make_hospital(db)  # no phone, no address: not a usable directory entry
    _listed(clinic)
    manifest = _manifest(client)
    organizations = [o["extension"]["organization"][0] for o in manifest["output"]
                     if o["type"] == "Slot"]
    assert f"Organization/{clinic.hospital.id}" in organizations
    assert f"Organization/{unlisted.id}" not in organizations
    assert {o["type"] for o in manifest["output"]} == {"Location", "Schedule", "Slot"}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind in ("Location", "Schedule", "Slot"):
        for url in _files(manifest, kind):
            by_kind.setdefault(kind, []).extend(_lines(client, url))
    for kind, resources in by_kind.items():
        assert resources, kind
        for r in resources:
            assert REQUIRED[kind] <= set(r), (kind, r["id"])
            assert r["resourceType"] == kind
    sites = {f"Location/{r['id']}" for r in by_kind["Location"]}
    for r in by_kind["Location"]:
        assert r["telecom"][0]["system"] == "phone" and set(r["address"]) >= ADDRESS
    assert all(len(s["actor"]) == 1 and s["actor"][0]["reference"] in sites
               for s in by_kind["Schedule"])
    schedules = {f"Schedule/{s['id']}" for s in by_kind["Schedule"]}
    assert all(s["schedule"]["reference"] in schedules for s in by_kind["Slot"])
    ids = [s["id"] for s in by_kind["Slot"]]
    assert len(ids) == len(set(ids))  # weekly files do not overlap
    assert {str(s.id) for s in clinic.schedule.slots} <= set(ids)
    assert {s["status"] for s in by_kind["Slot"]} == {"free", "busy"}
    for s in by_kind["Slot"]:
        urls = {e["url"] for e in s.get("extension", [])}
        assert (s["status"] == "free") == ({DEEP_LINK, BOOKING_PHONE} <= urls)


def test_bk4_referral_and_window_slots_are_never_published_as_free(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """Before the referral share returns (BK-4) and before the window pool opens, only the
    public online slots are free in the directory."""
    _listed(clinic)
    scheduling_service.set_policy(db, hospital=clinic.hospital,
                                  pools={"referral_return_days": 5})
    schedule = clinic.session(db, capacity=20, session=SessionOfDay.pm)
    at(local(DAY - timedelta(days=6), 10))  # online released; referral not yet returned
    url = f"/fhir/$bulk-publish/Slot.ndjson?organization={clinic.hospital.id}"
    published = {s["id"]: s["status"] for s in _lines(client, url)}
    pools = {str(s.id): s.pool for s in schedule.slots}
    assert {"online", "referral", "window", "priority", "clinic"} == set(pools.values())
    assert set(pools) <= set(published)
    assert {i for i in pools if published[i] == "free"} == \
        {i for i, pool in pools.items() if pool == "online"}
    assert {published[i] for i, pool in pools.items() if pool != "online"} == {"busy"}


def test_since_narrows_slots_to_what_changed(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    _listed(clinic)
    clinic.schedule.created_at = CREATED  # a session of long ago, whatever the real clock says
    url = f"/fhir/$bulk-publish/Slot.ndjson?organization={clinic.hospital.id}"
    since = local(DAY - timedelta(days=2), 9)
    quiet = _lines(client, url + "&_since=" + since.isoformat().replace("+", "%2B"))
    assert quiet == []
    patient, _headers = patient_session(db)
    principal = clinic.patient_principal(patient.id)
    appt = booking.book(db, principal=principal, patient_id=patient.id, channel=Channel.app,
                        now=local(DAY - timedelta(days=2), 9, 30),
                        schedule_id=clinic.schedule.id)
    changed = _lines(client, url + "&_since=" + since.isoformat().replace("+", "%2B"))
    assert [(s["id"], s["status"]) for s in changed] == [(str(appt.slot_id), "busy")]
    manifest = _manifest(client, "?_since=" + since.isoformat().replace("+", "%2B"))
    assert all("_since=" in o["url"] for o in manifest["output"] if o["type"] != "Location")


def _since(moment: datetime) -> str:
    return "&_since=" + moment.isoformat().replace("+", "%2B")


def test_slots_of_a_day_whose_booking_is_paused_are_published_busy(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """From the next-day cutoff (20:00) to the same-day opening (07:00) the engine books
    nothing of the next day: the directory publishes its slots ``busy``, with no booking
    link, and the day after stays free. Before and after the pause nothing changes."""
    _listed(clinic)
    after = clinic.session(db, day=DAY + timedelta(days=1))
    url = f"/fhir/$bulk-publish/Slot.ndjson?organization={clinic.hospital.id}"

    def free(schedule: Schedule) -> set[str]:
        published = {s["id"]: s for s in _lines(client, url)}
        out = {str(s.id) for s in schedule.slots if published[str(s.id)]["status"] == "free"}
        for i in out:
            urls = {e["url"] for e in published[i]["extension"]}
            assert {DEEP_LINK, BOOKING_PHONE} <= urls
        return out

    def public(schedule: Schedule) -> set[str]:
        return {str(s.id) for s in schedule.slots if s.pool in ("online", "referral")}

    at(local(DAY - timedelta(days=1), 19, 59))
    assert free(clinic.schedule) == public(clinic.schedule)
    at(local(DAY - timedelta(days=1), 21))
    assert free(clinic.schedule) == set()
    assert free(after) == public(after)
    at(local(DAY, 7))
    assert free(clinic.schedule) == public(clinic.schedule)


def test_since_reports_the_slots_whose_booking_paused_or_reopened(
        client: TestClient, at: Any, clinic: Clinic, db: Session) -> None:
    """A client polling with ``_since`` learns that a day's slots turned busy at the cutoff
    and free again at the same-day opening, though no row changed."""
    _listed(clinic)
    clinic.schedule.created_at = CREATED  # a session of long ago, whatever the real clock says
    url = f"/fhir/$bulk-publish/Slot.ndjson?organization={clinic.hospital.id}"
    ids = {str(s.id) for s in clinic.schedule.slots}
    at(local(DAY - timedelta(days=1), 21))
    paused = _lines(client, url + _since(local(DAY - timedelta(days=1), 19)))
    assert {s["id"] for s in paused} == ids and {s["status"] for s in paused} == {"busy"}
    at(local(DAY - timedelta(days=1), 23))
    assert _lines(client, url + _since(local(DAY - timedelta(days=1), 21))) == []
    at(local(DAY, 7, 30))
    reopened = _lines(client, url + _since(local(DAY - timedelta(days=1), 23)))
    assert {s["id"] for s in reopened} == ids
    assert {s["id"] for s in reopened if s["status"] == "free"} == \
        {str(s.id) for s in clinic.schedule.slots if s.pool in ("online", "referral")}
