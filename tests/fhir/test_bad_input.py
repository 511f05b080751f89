"""Bad input to the FHIR facade: a 4xx OperationOutcome with a stable code, nothing written.

Each case below once reached the error handler as a 500 (found by fuzzing): digits that are
not ASCII, ids beyond a 64-bit integer, years at the ends of the calendar, request bodies of
an unexpected shape, and JSON nested deeper than the parser recurses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.scheduling.models import Appointment
from tests.fhir.conftest import Clinic, fhir_json, patient_session

SUP2 = "\u00b2"  # "²": str.isdigit() says yes, int() says no
BIG = "9" * 20  # beyond a 64-bit integer
FIND = {"start": "2026-12-14", "end": "2026-12-14"}
DEEP = "[" * 100_000 + "]" * 100_000

INVALID = (400, "invalid", "fhir_invalid_parameter")
NOT_FOUND = (404, "not-found", "fhir_resource_not_found")
BAD_BODY = (422, "invalid", "invalid_input")
TOO_LARGE = (413, "too-long", "body_too_large")


def _refused(response: Any, expected: tuple[int, str, str]) -> None:
    status, issue_code, code = expected
    issue = fhir_json(response, status)["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == (issue_code, code)


def _appointments(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Appointment)) or 0


# --- query parameters and ids in the URL ------------------------------------------------

PUBLIC = [
    ("/fhir/Slot", {"_count": SUP2}, INVALID),
    ("/fhir/Slot", {"_offset": SUP2}, INVALID),
    ("/fhir/Slot", {"_count": "1" * 5000}, INVALID),  # beyond int()'s digit limit
    ("/fhir/Slot", {"schedule": BIG}, INVALID),
    ("/fhir/Slot", {"schedule": SUP2}, INVALID),
    ("/fhir/Schedule", {"organization": f"Organization/{BIG}"}, INVALID),
    ("/fhir/Schedule", {"actor": f"Location/site-{BIG}"}, INVALID),
    ("/fhir/Location", {"organization": BIG}, INVALID),
    ("/fhir/HealthcareService", {"organization": SUP2}, INVALID),
    ("/fhir/PractitionerRole", {"service": f"HealthcareService/{BIG}"}, INVALID),
    ("/fhir/Organization/" + BIG, {}, NOT_FOUND),
    ("/fhir/Location/site-" + BIG, {}, NOT_FOUND),
    ("/fhir/Location/" + BIG, {}, NOT_FOUND),
    ("/fhir/Slot/" + BIG, {}, NOT_FOUND),
    ("/fhir/Schedule/" + BIG, {}, NOT_FOUND),
    ("/fhir/PractitionerRole/1-" + BIG, {}, NOT_FOUND),
    ("/fhir/Appointment/$find", {**FIND, "_count": SUP2}, INVALID),
    ("/fhir/Appointment/$find", {**FIND, "patient": SUP2}, INVALID),
    ("/fhir/Appointment/$find", {**FIND, "organization": SUP2}, INVALID),
    ("/fhir/Appointment/$find", {**FIND, "organization": BIG}, INVALID),
    ("/fhir/Appointment/$find", {**FIND, "location": SUP2}, INVALID),
    ("/fhir/Appointment/$find", {**FIND, "location": f"site-{SUP2}"}, INVALID),
    ("/fhir/Appointment/$find", {"start": "", "end": "2026-12-10"}, INVALID),
    ("/fhir/Appointment/$find", {"start": ",", "end": "2026-12-10"}, INVALID),
    ("/fhir/Slot", {"start": "9999-12-31"}, INVALID),
    ("/fhir/Slot", {"start": "ge0001-01-01"}, INVALID),
    ("/fhir/Schedule", {"date": "9999-12-31"}, INVALID),
    ("/fhir/Schedule", {"date": "2201-01-01"}, INVALID),
    ("/fhir/Appointment/$find", {"start": "1899-12-31", "end": "1900-01-02"}, INVALID),
    ("/fhir/$bulk-publish", {"_since": "9999-12-31"}, INVALID),
    ("/fhir/$bulk-publish", {"_since": "0001-01-01T00:00:00+14:00"}, INVALID),
    ("/fhir/$bulk-publish/Schedule.ndjson", {"_since": "9999-12-31T23:59:59-12:00"}, INVALID),
    ("/fhir/$bulk-publish/Slot.ndjson", {"organization": "1", "week": "9999-W52"}, INVALID),
    ("/fhir/$bulk-publish/Slot.ndjson", {"organization": BIG, "week": "2026-W51"}, INVALID),
    ("/fhir/$bulk-publish/Slot.ndjson", {"organization": SUP2}, INVALID),
    # A week in full-width digits, padded or of one digit is no ISO week written YYYY-Www.
    *[("/fhir/$bulk-publish/Slot.ndjson", {"organization": "1", "week": w}, INVALID)
      for w in ("２０２６-W51", "2026-W５１", " 2026-W51", "2026-W51 ", "2026-W5", "+2026-W51")],
]


@pytest.mark.parametrize(("path", "params", "expected"), PUBLIC,
                         ids=[f"{p} {q}"[:80] for p, q, _ in PUBLIC])
def test_bad_public_parameters_and_ids_are_refused(
        client: TestClient, at: object, path: str, params: dict[str, str],
        expected: tuple[int, str, str]) -> None:
    _refused(client.get(path, params=params), expected)


def test_years_at_the_ends_of_the_range_are_accepted(client: TestClient, at: object) -> None:
    for value in ("1900-01-01", "2200-12-31", "ge2200-12-31T23:59:59-12:00"):
        assert fhir_json(client.get("/fhir/Slot", params={"start": value}))["total"] == 0


def test_patient_ids_that_cannot_be_ids_match_nothing(
        client: TestClient, at: object, db: Session) -> None:
    """``_id`` is a token: one that is no OneTrip id matches no patient, as ``_id=abc``."""
    _patient, headers = patient_session(db)
    for value in (SUP2, BIG):
        found = fhir_json(client.get("/fhir/Patient", params={"_id": value}, headers=headers))
        assert found["total"] == 0
    _refused(client.get(f"/fhir/Patient/{BIG}", headers=headers), NOT_FOUND)
    _refused(client.get(f"/fhir/Appointment/{BIG}", headers=headers), NOT_FOUND)
    _refused(client.get(f"/fhir/Appointment/waitlist-{BIG}", headers=headers), NOT_FOUND)
    _refused(client.get("/fhir/Appointment", params={"patient": f"Patient/{BIG}"},
                        headers=headers), INVALID)


# --- request bodies of $find, $hold and $book -------------------------------------------


def _parameters(*parameter: Any) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parameter)}


def _appointment(slot_id: int, patient_id: int, **fields: Any) -> dict[str, Any]:
    """An Appointment that $book would book, with ``fields`` replaced."""
    resource = {"resourceType": "Appointment", "status": "pending",
                "slot": [{"reference": f"Slot/{slot_id}"}],
                "participant": [{"actor": {"reference": f"Patient/{patient_id}"}}]}
    return _parameters({"name": "appointment-resource", "resource": {**resource, **fields}})


def _reference(ident: str) -> dict[str, Any]:
    return _parameters({"name": "appointment-reference",
                        "valueReference": {"reference": f"Appointment/{ident}"}})


def _with_patient(slot_id: int, value: dict[str, Any]) -> dict[str, Any]:
    body = _reference(f"proposed-{slot_id}")
    body["parameter"].append({"name": "patient", **value})
    return body


#: Bodies built from a public slot and the signed-in patient; each with what it gets.
BODIES: dict[str, tuple[Any, tuple[int, str, str]]] = {
    "parameter-not-a-list": (lambda s, p: {"resourceType": "Parameters", "parameter": 5},
                             BAD_BODY),
    "patient-empty-coding": (lambda s, p: _with_patient(
        s, {"valueCodeableConcept": {"coding": []}}), BAD_BODY),
    "patient-coding-text": (lambda s, p: _with_patient(
        s, {"valueCodeableConcept": {"coding": "abc"}}), BAD_BODY),
    "proposal-superscript": (lambda s, p: _reference(f"proposed-{SUP2}"), INVALID),
    "proposal-patient-superscript": (lambda s, p: _reference(f"proposed-{s}-{SUP2}"), INVALID),
    "proposal-too-big": (lambda s, p: _reference(f"proposed-{BIG}"), INVALID),
    "appointment-too-big": (lambda s, p: _reference(BIG), INVALID),
    "participant-text": (lambda s, p: _appointment(s, p, participant=["x"]), BAD_BODY),
    "participant-not-a-list": (lambda s, p: _appointment(s, p, participant="abc"), BAD_BODY),
    "participant-actor-text": (lambda s, p: _appointment(
        s, p, participant=[{"actor": "x"}]), BAD_BODY),
    "participant-too-big": (lambda s, p: _appointment(
        s, p, participant=[{"actor": {"reference": f"Patient/{BIG}"}}]), INVALID),
    "slot-text": (lambda s, p: _appointment(s, p, slot="abc"), BAD_BODY),
    "slot-number": (lambda s, p: _appointment(s, p, slot=[1]), BAD_BODY),
    "slot-object": (lambda s, p: _appointment(s, p, slot={"reference": f"Slot/{s}"}),
                    BAD_BODY),
    "cancel-reason-text": (lambda s, p: _appointment(
        s, p, id="1", status="cancelled", cancelationReason="x"), BAD_BODY),
    "cancel-id-superscript": (lambda s, p: _appointment(
        s, p, id=SUP2, status="cancelled"), BAD_BODY),
}


@pytest.mark.parametrize("operation", ["$hold", "$book"])
@pytest.mark.parametrize("case", list(BODIES))
def test_hold_and_book_refuse_bodies_of_the_wrong_shape_and_write_nothing(
        client: TestClient, at: object, clinic: Clinic, db: Session, operation: str,
        case: str) -> None:
    patient, headers = patient_session(db)
    build, expected = BODIES[case]
    before = _appointments(db)
    _refused(client.post(f"/fhir/Appointment/{operation}", headers=headers,
                         json=build(_public_slot(clinic), patient.id)), expected)
    assert _appointments(db) == before


def test_the_well_formed_appointment_of_those_cases_books(
        client: TestClient, at: object, clinic: Clinic, db: Session) -> None:
    """The control: without its flaw, the body above books one appointment."""
    patient, headers = patient_session(db)
    before = _appointments(db)
    booked = fhir_json(client.post("/fhir/Appointment/$book", headers=headers,
                                   json=_appointment(_public_slot(clinic), patient.id)))
    assert booked["entry"][0]["resource"]["status"] == "booked"
    assert _appointments(db) == before + 1


def _public_slot(clinic: Clinic) -> int:
    return next(s.id for s in clinic.schedule.slots if s.pool in ("online", "referral"))


FIND_BODIES: dict[str, dict[str, Any]] = {
    "parameter-not-a-list": {"resourceType": "Parameters", "parameter": 5},
    "coding-empty": _parameters(
        {"name": "start", "valueDateTime": "2026-12-14"},
        {"name": "end", "valueDateTime": "2026-12-14"},
        {"name": "specialty", "valueCoding": {"coding": []}}),
    "coding-text": _parameters(
        {"name": "start", "valueDateTime": "2026-12-14"},
        {"name": "end", "valueDateTime": "2026-12-14"},
        {"name": "specialty", "valueCodeableConcept": {"coding": "abc"}}),
    "coding-of-numbers": _parameters(
        {"name": "start", "valueCodeableConcept": {"coding": [1]}},
        {"name": "end", "valueDateTime": "2026-12-14"}),
    "count-superscript": _parameters(
        {"name": "start", "valueDateTime": "2026-12-14"},
        {"name": "end", "valueDateTime": "2026-12-14"},
        {"name": "_count", "valueString": SUP2}),
}
FIND_EXPECTED = {"count-superscript": INVALID}


@pytest.mark.parametrize("case", list(FIND_BODIES))
def test_find_refuses_bodies_of_the_wrong_shape(client: TestClient, at: object,
                                                case: str) -> None:
    _refused(client.post("/fhir/Appointment/$find", json=FIND_BODIES[case]),
             FIND_EXPECTED.get(case, BAD_BODY))


# --- bodies too deep or too large -------------------------------------------------------


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body sent in pieces (chunked, without a Content-Length)."""
    for i in range(0, len(body), 65536):
        yield body[i:i + 65536]


LARGE = b'{"resourceType":"Parameters","parameter":[],"pad":"' + b"x" * 1_100_000 + b'"}'
RAW_BODIES = {"deep": (DEEP.encode(), BAD_BODY), "large": (LARGE, TOO_LARGE)}


@pytest.mark.parametrize("operation", ["$find", "$hold", "$book"])
@pytest.mark.parametrize("case", list(RAW_BODIES))
@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_operations_refuse_bodies_too_deep_or_too_large(
        client: TestClient, at: object, clinic: Clinic, db: Session, operation: str,
        case: str, chunked: bool) -> None:
    _patient, headers = patient_session(db)
    body, expected = RAW_BODIES[case]
    before = _appointments(db)
    response = client.post(f"/fhir/Appointment/{operation}",
                           content=_chunks(body) if chunked else body,
                           headers={**headers, "Content-Type": "application/fhir+json"})
    _refused(response, expected)
    assert _appointments(db) == before


def test_a_deep_value_within_what_the_parser_reads_is_refused(
        client: TestClient, at: object) -> None:
    """Nested just below the parser's limit, a value still must not recurse past it later."""
    for depth in (100, 500, 900, 950, 1000):
        value = "[" * depth + "]" * depth
        body = ('{"resourceType":"Parameters","parameter":[{"name":"start","valueString":'
                + value + '},{"name":"end","valueString":"2026-12-14"}]}')
        response = client.post("/fhir/Appointment/$find", content=body)
        assert 400 <= response.status_code < 500, (depth, response.status_code)
        assert fhir_json(response, response.status_code)["resourceType"] == "OperationOutcome"


def test_search_by_post_refuses_a_form_body_too_large(client: TestClient) -> None:
    body = b"name=" + b"x" * 1_100_000
    _refused(client.post("/fhir/Organization/_search", content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}),
             TOO_LARGE)


@pytest.mark.parametrize("kind", ["application/fhir+json", "application/json"])
def test_a_nul_in_a_parameters_body_is_refused(client: TestClient, at: object, db: Session,
                                               kind: str) -> None:
    """PostgreSQL's driver refused the NUL with a 500; SQLite would have read it."""
    _patient, headers = patient_session(db)
    before = _appointments(db)
    body = ('{"resourceType":"Parameters","parameter":[{"name":"start","valueString":'
            '"2026-12-14\\u0000"},{"name":"end","valueString":"2026-12-14"}]}')
    response = client.post("/fhir/Appointment/$hold", content=body,
                           headers={**headers, "Content-Type": kind})
    _refused(response, (422, "invalid", "invalid_text"))
    assert _appointments(db) == before
