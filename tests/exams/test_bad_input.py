"""Bad input to the exam API is refused with a stable code and a Chinese
reason, and changes nothing: a catalogue with a wrong type, an unknown key, no exams or a
number past its bound (EX-2: the planner must be able to use what is stored), a follow-up
window without its time zone, slots and calendars on days no calendar holds (EX-3). The
same catalogues through `onetrip exams catalogue-import`: test_cli_bad_input.py."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.exams import service
from onetrip.exams.catalogue import catalogue_as_data, default_catalogue_data, parse_catalogue
from onetrip.exams.errors import CatalogueRejected
from onetrip.exams.models import CatalogueExam, ExamOrder, ExamResource, ExamSlot
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import auth, make_patient, make_token

URL = "/api/v1/exams/catalogue"
PACKAGED = catalogue_as_data(parse_catalogue(default_catalogue_data()))
FIRST = PACKAGED["exam"][0]["code"]
Change = Callable[[dict[str, Any]], Any]


def edited_catalogue() -> dict[str, Any]:
    """The packaged catalogue with the centre's own preparation text for its first exam."""
    data = copy.deepcopy(PACKAGED)
    data["exam"][0]["instruction"] = "本院说明：检查前一晚22:00起禁食"
    return data


def edit(change: Callable[[dict[str, Any]], object]) -> Change:
    """The catalogue changed in place by ``change``."""
    def apply(data: dict[str, Any]) -> Any:
        change(data)
        return data
    return apply


def exam(**fields: Any) -> Change:
    return edit(lambda d: d["exam"][0].update(fields))


def order(**fields: Any) -> Change:
    return edit(lambda d: d["order"][0].update(fields))


def section(key: str, value: Any) -> Change:
    return edit(lambda d: d.update({key: value}))


def twice(kind: str) -> Change:
    return edit(lambda d: d[kind].append(dict(d[kind][0])))


def whole(value: Any) -> Change:
    return lambda _d: value


#: (change to the edited catalogue, words the refusal must say): the exam and the field.
BAD_CATALOGUES: dict[str, tuple[Change, tuple[str, ...]]] = {
    "empty": (whole({}), ("exam",)),
    "misspelt_key": (edit(lambda d: d.update(exams=d.pop("exam"))), ("未知", "exams")),
    "extra_key": (section("notes", "x"), ("未知", "notes")),
    "not_an_object": (whole([5]), ("对象",)),
    "null": (whole(None), ("对象",)),
    "exam_not_a_list": (section("exam", 5), ("exam", "列表")),
    "no_exams": (section("exam", []), ("exam",)),
    "exam_a_number": (section("exam", [5]), ("exam", "第1项")),
    "exam_a_string": (section("exam", ["ab"]), ("exam", "第1项")),
    "code_an_object": (exam(code={"a": 1}), ("第1项", "code")),
    "code_too_long": (exam(code="x" * 41), ("code", "40")),
    "name_a_list": (exam(name=["x"]), (FIRST, "name")),
    "name_blank": (exam(name="  "), (FIRST, "name")),
    "name_too_long": (exam(name="名" * 101), (FIRST, "name", "100")),
    "source_too_long": (exam(source="据" * 301), (FIRST, "source", "300")),
    "instruction_a_number": (exam(instruction=5), (FIRST, "instruction")),
    "contrast_a_list": (exam(contrast=["iodine"]), (FIRST, "contrast")),
    "unknown_field": (exam(fasting=True), (FIRST, "fasting")),
    "minutes_huge": (exam(minutes=10**30), (FIRST, "minutes")),
    "minutes_zero": (exam(minutes=0), (FIRST, "minutes")),
    "minutes_longer_than_any_slot": (exam(minutes=241), (FIRST, "minutes", "240")),
    "minutes_a_bool": (exam(minutes=True), (FIRST, "minutes")),
    "minutes_a_fraction": (exam(minutes=15.5), (FIRST, "minutes")),
    "fasting_hours_huge": (exam(fasting_hours=10**9), (FIRST, "fasting_hours")),
    "fasting_hours_over_a_day": (exam(fasting_hours=25), (FIRST, "fasting_hours", "24")),
    "prep_days_huge": (exam(prep_days=10**9), (FIRST, "prep_days")),
    "after_minutes_huge": (exam(after_minutes=10**9), (FIRST, "after_minutes")),
    "result_minutes_huge": (exam(result_minutes=10**9), (FIRST, "result_minutes")),
    "drink_before_huge": (exam(drink_before_minutes=10**9), (FIRST, "drink_before_minutes")),
    "creatinine_days_huge": (exam(creatinine_days=10**9), (FIRST, "creatinine_days")),
    "creatinine_age_negative": (exam(creatinine_age=-1), (FIRST, "creatinine_age")),
    "flag_a_string": (exam(sedation="false"), (FIRST, "sedation")),
    "latest_start_with_zone": (exam(latest_start="11:30+08:00"), (FIRST, "latest_start")),
    "latest_start_a_number": (exam(latest_start=1130), (FIRST, "latest_start")),
    "latest_start_seconds": (exam(latest_start="11:30:15"), (FIRST, "latest_start")),
    "order_not_a_list": (section("order", 5), ("order", "列表")),
    "order_a_number": (section("order", [5]), ("order", "第1项")),
    "rule_exam_an_object": (order(first={"a": 1}), ("先后", "first")),
    "rule_reason_a_list": (order(reason=["x"]), ("先后", "reason")),
    "gap_overflows": (order(gap_minutes=2**63), ("先后", "gap_minutes")),
    "gap_a_bool": (order(gap_minutes=True), ("先后", "gap_minutes")),
    "reverse_days_text": (order(reverse_days="x"), ("先后", "reverse_days")),
    "reverse_days_null": (order(reverse_days=None), ("先后", "reverse_days")),
    "reverse_days_huge": (order(reverse_days=10**9), ("先后", "reverse_days")),
    "reverse_minutes_huge": (order(reverse_minutes=10**30), ("先后", "reverse_minutes")),
    "reverse_twice": (order(reverse_days=3, reverse_minutes=60), ("reverse_days",
                                                                  "reverse_minutes")),
    "rule_unknown_field": (order(gap=5), ("先后", "gap")),
    "order_rule_twice": (twice("order"), ("先后", "重复")),
    "ban_unknown_field": (edit(lambda d: d["not_same_day"][0].update(gap_minutes=5)),
                          ("不同日", "gap_minutes")),
    "ban_twice": (twice("not_same_day"), ("不同日", "重复")),
    "bans_not_a_list": (section("not_same_day", {"first": "ecg"}), ("not_same_day", "列表")),
}


def broken(name: str) -> Any:
    change, _words = BAD_CATALOGUES[name]
    return change(edited_catalogue())


def put(client: TestClient, headers: dict[str, str], body: Any) -> Any:
    """PUT the body as JSON as it is, ``null`` too."""
    return client.put(URL, headers={**headers, "content-type": "application/json"},
                      content=json.dumps(body, ensure_ascii=False).encode())


def test_the_cases_change_the_catalogue_they_start_from() -> None:
    assert parse_catalogue(edited_catalogue()) != parse_catalogue(PACKAGED)
    for name in BAD_CATALOGUES:
        assert broken(name) != edited_catalogue(), name


@pytest.mark.parametrize("name", list(BAD_CATALOGUES))
def test_ex2_a_catalogue_put_with_bad_input_is_refused_and_the_edited_one_stays(
        client: TestClient, db: Session, hospital: Hospital, name: str) -> None:
    centre = auth(make_token(db, Role.exam_centre, hospital))
    edited = edited_catalogue()
    assert client.put(URL, headers=centre, json=edited).status_code == 200
    r = put(client, centre, broken(name))
    assert (r.status_code, r.json()["code"]) == (422, "catalogue_invalid"), r.text
    for word in BAD_CATALOGUES[name][1]:
        assert word in r.json()["message"], (word, r.json()["message"])
    assert client.get(URL, headers=centre).json() == edited


def test_a_refused_catalogue_leaves_plans_working(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    """The 10**9 days of preparation that once went in made every plan a 500."""
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    centre = auth(make_token(db, Role.exam_centre, hospital))
    doctor = auth(make_token(db, Role.doctor, hospital))
    p = make_patient(db)
    r = client.post("/api/v1/exams/orders", headers=doctor,
                    json={"patient_id": p.id, "exam_code": FIRST})
    assert r.status_code == 201, r.text
    for name in ("prep_days_huge", "fasting_hours_huge"):
        assert put(client, centre, broken(name)).status_code == 422
    r = client.post("/api/v1/exams/plans", headers=centre, json={"patient_id": p.id})
    assert r.status_code == 200, r.text


def test_a_stored_catalogue_the_planner_cannot_use_is_a_clear_error(
        db: Session, hospital: Hospital) -> None:
    """One stored before these checks existed: named, not a crash, until it is replaced."""
    row = db.scalars(select(CatalogueExam).where(CatalogueExam.hospital_id == hospital.id,
                                                 CatalogueExam.code == FIRST)).one()
    row.spec = {**row.spec, "prep_days": 10**9}
    db.flush()
    with pytest.raises(CatalogueRejected, match="prep_days"):
        service.catalogue(db, hospital.id)
    service.install_catalogue(db, hospital_id=hospital.id, data=edited_catalogue())
    assert service.catalogue(db, hospital.id) == parse_catalogue(edited_catalogue())


# --- follow-up windows need their time zone ----------------------------------------------


@pytest.mark.parametrize(("opens", "closes"), [
    ("2026-12-10T09:00:00", "2026-12-10T11:00:00+08:00"),
    ("2026-12-10T09:00:00+08:00", "2026-12-10T11:00:00"),
    ("2026-12-10T09:00:00", "2026-12-10T11:00:00"),
])
def test_a_follow_up_window_without_its_time_zone_is_refused(
        client: TestClient, db: Session, hospital: Hospital, opens: str, closes: str) -> None:
    doctor = auth(make_token(db, Role.doctor, hospital))
    p = make_patient(db)
    before = db.scalar(select(func.count(ExamOrder.id)))
    r = client.post("/api/v1/exams/orders", headers=doctor, json={
        "patient_id": p.id, "exam_code": "ecg", "needed_for_followup": True,
        "followup_opens": opens, "followup_closes": closes})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text
    assert "followup" in r.json()["message"]
    db.expire_all()
    assert db.scalar(select(func.count(ExamOrder.id))) == before


@pytest.mark.parametrize(("opens", "closes"), [
    ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
    ("9999-12-31T20:00:00+00:00", "9999-12-31T23:00:00+00:00"),
    ("2026-12-10T09:00:00+08:00", "2201-01-01T11:00:00+08:00")])
def test_a_follow_up_window_outside_the_years_a_calendar_holds_is_refused(
        client: TestClient, db: Session, hospital: Hospital, now: datetime, opens: str,
        closes: str) -> None:
    """Once stored, such a window made every plan of the patient fail."""
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    p = make_patient(db)
    before = db.scalar(select(func.count(ExamOrder.id)))
    r = client.post("/api/v1/exams/orders", headers=doctor, json={
        "patient_id": p.id, "exam_code": "ecg", "needed_for_followup": True,
        "followup_opens": opens, "followup_closes": closes})
    assert (r.status_code, r.json()["code"]) == (422, "resource_invalid"), r.text
    assert "1900" in r.json()["message"] and "2200" in r.json()["message"]
    db.expire_all()
    assert db.scalar(select(func.count(ExamOrder.id))) == before


def test_a_booking_with_a_follow_up_time_without_its_zone_is_refused(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    day = now + timedelta(days=1)
    r = client.post("/api/v1/exams/orders", headers=doctor, json={
        "patient_id": p.id, "exam_code": "ecg", "needed_for_followup": True,
        "followup_opens": day.replace(hour=13).isoformat(),
        "followup_closes": day.replace(hour=17).isoformat()})
    assert r.status_code == 201, r.text
    plan = client.post("/api/v1/exams/plans", headers=centre, json={"patient_id": p.id}).json()
    assert plan["followup_at"] and plan["visits"]
    naive = datetime.fromisoformat(plan["followup_at"]).replace(tzinfo=None).isoformat()
    r = client.post("/api/v1/exams/bookings", headers=centre, json={
        "patient_id": p.id, "followup_at": naive,
        "visits": [{"order_id": v["order_id"], "slot_id": v["slot_id"]}
                   for v in plan["visits"]]})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text
    assert "followup_at" in r.json()["message"]
    db.expire_all()
    assert db.get_one(ExamOrder, plan["visits"][0]["order_id"]).status == "pending"


# --- slots and calendars only on days a calendar holds (EX-3) ----------------------------


def _slots(db: Session, resource_id: int) -> int:
    db.expire_all()
    return db.scalar(select(func.count(ExamSlot.id)).where(
        ExamSlot.resource_id == resource_id)) or 0


def _room(db: Session, hospital: Hospital) -> int:
    """One of the demo's rooms."""
    return db.scalars(select(ExamResource.id).where(
        ExamResource.hospital_id == hospital.id).order_by(ExamResource.id)).first() or 0


@pytest.mark.parametrize("start", [
    "9999-12-31T23:50:00+00:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+00:00",
    "1899-12-31T23:00:00+08:00", "2201-01-01T08:00:00+08:00"])
def test_a_slot_outside_the_years_a_calendar_holds_is_refused(
        client: TestClient, db: Session, hospital: Hospital, now: datetime,
        start: str) -> None:
    centre = auth(make_token(db, Role.exam_centre, hospital))
    rid = _room(db, hospital)
    before = _slots(db, rid)
    fine = (now + timedelta(days=30)).replace(hour=20, minute=0).isoformat()
    r = client.post(f"/api/v1/exams/resources/{rid}/slots", headers=centre,
                    json={"starts": [fine, start]})
    assert (r.status_code, r.json()["code"]) == (422, "resource_invalid"), r.text
    assert "1900" in r.json()["message"] and "2200" in r.json()["message"]
    assert _slots(db, rid) == before


@pytest.mark.parametrize(("start", "end"), [
    ("9999-12-25", "9999-12-31"), ("0001-01-01", "0001-01-02"),
    ("1899-12-30", "1900-01-02"), ("2200-12-30", "2201-01-02")])
def test_a_calendar_outside_the_years_a_calendar_holds_is_refused(
        client: TestClient, db: Session, hospital: Hospital, start: str, end: str) -> None:
    centre = auth(make_token(db, Role.exam_centre, hospital))
    rid = _room(db, hospital)
    before = _slots(db, rid)
    r = client.post(f"/api/v1/exams/resources/{rid}/calendar", headers=centre,
                    json={"start": start, "end": end})
    assert (r.status_code, r.json()["code"]) == (422, "resource_invalid"), r.text
    assert "1900" in r.json()["message"] and "2200" in r.json()["message"]
    assert _slots(db, rid) == before
