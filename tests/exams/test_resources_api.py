"""Rooms and devices over the API (EX-3): the exam centre adds them, opens their calendars
and adds single slots; bad input is refused with a stable code and writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.exams import service
from onetrip.exams.models import ExamResource, ExamSlot
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import auth, make_token

ROOM = {"code": "US9", "name": "超声9诊室", "building": "医技楼", "room": "2楼209",
        "exam_codes": ["us_thyroid", "us_abdomen"], "slot_minutes": 15, "capacity": 1,
        "hours": [["08:00", "12:00"], ["13:30", "17:00"]]}


def counts(db: Session) -> tuple[int, int]:
    return (db.scalar(select(func.count(ExamResource.id))) or 0,
            db.scalar(select(func.count(ExamSlot.id))) or 0)


def test_ex3_the_centre_adds_a_room_opens_its_calendar_and_the_planner_uses_it(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    centre = auth(make_token(db, Role.exam_centre, hospital))
    r = client.post("/api/v1/exams/resources", headers=centre, json=ROOM)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["exam_codes"] == ["us_thyroid", "us_abdomen"] and res["building"] == "医技楼"
    day = (now + timedelta(days=1)).date().isoformat()
    r = client.post(f"/api/v1/exams/resources/{res['id']}/calendar", headers=centre,
                    json={"start": day, "end": day})
    assert r.status_code == 200 and r.json()["added"] == 30  # 16 + 14 slots of 15 minutes
    assert any(s.resource_id == res["id"] for s in service.free_slots(
        db, hospital_id=hospital.id, start=now, end=now + timedelta(days=2)))
    listed = client.get("/api/v1/exams/resources", headers=centre).json()
    assert "US9" in {x["code"] for x in listed}
    r = client.put("/api/v1/exams/walks", headers=centre,
                   json={"a": "医技楼", "b": "新门诊楼", "minutes": 12})
    assert r.status_code == 204
    assert service.site(db, hospital.id).walk_minutes("新门诊楼", "医技楼") == 12


def test_ex3_bad_rooms_and_overlapping_slots_are_refused_and_nothing_is_written(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    centre = auth(make_token(db, Role.exam_centre, hospital))
    before = counts(db)
    cases = [
        ({**ROOM, "hours": [["08:00", "12:00"], ["11:00", "14:00"]]}, 409, "calendar_overlap"),
        ({**ROOM, "exam_codes": ["us_heart"]}, 422, "unknown_exam"),
        ({**ROOM, "slot_minutes": 60}, 422, "resource_invalid"),  # EX-3: 30 minutes or finer
        ({**ROOM, "code": "CT1"}, 422, "resource_invalid"),  # the demo's CT room has it
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/exams/resources", headers=centre, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), body
        assert r.json()["message"]  # in Chinese, for the centre
    assert counts(db) == before
    res = client.post("/api/v1/exams/resources", headers=centre, json=ROOM).json()
    start = (now + timedelta(days=1)).replace(hour=18, minute=0)
    url = f"/api/v1/exams/resources/{res['id']}/slots"
    r = client.post(url, headers=centre, json={"starts": [start.isoformat()]})
    assert r.status_code == 201 and len(r.json()) == 1
    before = counts(db)
    for body in ({"starts": [(start + timedelta(minutes=10)).isoformat()]},
                 {"starts": [(start + timedelta(hours=1)).isoformat(),
                             (start + timedelta(hours=1, minutes=5)).isoformat()]}):
        r = client.post(url, headers=centre, json=body)
        assert (r.status_code, r.json()["code"]) == (409, "calendar_overlap")
        assert "重叠" in r.json()["message"]
    r = client.post(url, headers=centre, json={
        "starts": [(start + timedelta(hours=2)).isoformat()], "minutes": 45})
    assert (r.status_code, r.json()["code"]) == (422, "resource_invalid")  # EX-3
    r = client.post(url, headers=centre, json={"starts": ["2030-01-07T08:00:00"]})
    assert r.status_code == 422  # a time without its zone is refused, not guessed
    assert counts(db) == before
    doctor = auth(make_token(db, Role.doctor, hospital))
    assert client.post("/api/v1/exams/resources", headers=doctor,
                       json={**ROOM, "code": "US8"}).status_code == 403
