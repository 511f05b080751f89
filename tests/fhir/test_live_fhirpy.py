"""A real FHIR client (fhirpy, sync) against a live server in its own process: search free
slots, $find, $hold and $book, then read the Appointment back."""

from __future__ import annotations

from datetime import timedelta

from fhirpy import SyncFHIRClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.scheduling.models import Appointment
from tests import racekit
from tests.fhir.conftest import valid


def test_fhirpy_finds_holds_books_and_reads_back(race_engine: Engine) -> None:
    seed = racekit.seed(race_engine, patients=1, capacity=6)
    schedule_id, patient_id = seed.schedule_ids[0], seed.patient_ids[0]
    day = utcnow().astimezone(get_settings().tz).date() + timedelta(days=3)
    with racekit.server(race_engine.info["url"], workers=1) as (base, _proc):  # type: ignore[attr-defined]
        client = SyncFHIRClient(f"{base}/fhir", authorization=f"Bearer {seed.window_token}")

        free = client.resources("Slot").search(schedule=f"Schedule/{schedule_id}",
                                               status="free").limit(4).fetch_all()
        assert len(free) == 6  # followed the next link past the first page of four
        for slot in free:
            valid(slot.serialize())
        assert sorted(s["start"] for s in free) == [s["start"] for s in free]

        found = client.resources("Appointment").execute("$find", data={
            "resourceType": "Parameters", "parameter": [
                {"name": "start", "valueDateTime": day.isoformat()},
                {"name": "end", "valueDateTime": (day + timedelta(days=1)).isoformat()},
                {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
            ]})
        proposals = [valid(e["resource"]) for e in found["entry"]]
        assert [p["slot"][0]["reference"] for p in proposals] == \
            [f"Slot/{s['id']}" for s in free]

        reference = {"reference": f"Appointment/{proposals[0]['id']}"}
        held = client.resources("Appointment").execute("$hold", data={
            "resourceType": "Parameters",
            "parameter": [{"name": "appointment-reference", "valueReference": reference}]})
        pending = valid(held["entry"][0]["resource"])
        assert pending["status"] == "pending"
        assert client.reference("Slot", free[0]["id"]).to_resource()["status"] == \
            "busy-tentative"

        booked = client.resources("Appointment").execute("$book", data={
            "resourceType": "Parameters", "parameter": [
                {"name": "appointment-reference",
                 "valueReference": {"reference": f"Appointment/{pending['id']}"}}]})
        assert valid(booked["entry"][0]["resource"])["status"] == "booked"

        appointment = client.reference("Appointment", pending["id"]).to_resource()
        valid(appointment.serialize())
        assert appointment["status"] == "booked"
        assert appointment["start"] == proposals[0]["start"]
        assert appointment["participant"][0]["actor"]["reference"] == f"Patient/{patient_id}"
        listed = client.resources("Appointment").search(patient=f"Patient/{patient_id}",
                                                        date=day.isoformat()).fetch()
        assert [a["id"] for a in listed] == [pending["id"]]

    with Session(race_engine) as db:
        rows = db.scalars(select(Appointment).where(Appointment.patient_id == patient_id)).all()
        assert [(r.status, r.channel) for r in rows] == [("booked", "window")]
