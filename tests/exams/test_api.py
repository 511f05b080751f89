"""The exam API and pages through the app (EX-1, EX-2): codes on bad input, nothing changed."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import get_now
from onetrip.exams import service
from onetrip.exams.models import ExamBooking, ExamOrder, ExamResource
from onetrip.exams.rules import FreeSlot
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import auth, make_patient, make_token


def test_orders_plans_and_bookings_over_the_api(client: TestClient, db: Session,
                                                hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db, birth_date=date(1950, 5, 5))
    r = client.post("/api/v1/exams/orders", headers=doctor,
                    json={"patient_id": p.id, "exam_code": "pet_ct"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_exam"
    r = client.post("/api/v1/exams/orders", headers=doctor,
                    json={"patient_id": p.id, "exam_code": "ct_contrast"})
    assert r.status_code == 422 and r.json()["code"] == "creatinine_required"
    assert db.scalar(select(func.count()).select_from(ExamOrder).where(
        ExamOrder.patient_id == p.id)) == 0
    for code in ("us_thyroid", "ecg"):
        r = client.post("/api/v1/exams/orders", headers=doctor,
                        json={"patient_id": p.id, "exam_code": code})
        assert r.status_code == 201, r.text
    r = client.post("/api/v1/exams/plans", headers=centre, json={"patient_id": p.id})
    plan = r.json()
    assert r.status_code == 200 and plan["trips"] == 1 and len(plan["visits"]) == 2
    picks = [{"order_id": v["order_id"], "slot_id": v["slot_id"]} for v in plan["visits"]]
    r = client.post("/api/v1/exams/bookings", headers=centre,
                    json={"patient_id": p.id, "visits": picks})
    assert r.status_code == 201 and {b["status"] for b in r.json()} == {"booked"}
    r = client.post("/api/v1/exams/bookings", headers=centre,
                    json={"patient_id": p.id, "visits": picks})
    assert r.status_code == 409 and r.json()["code"] == "exam_order_not_pending"
    day = plan["visits"][0]["start"][:10]
    lines = client.get(f"/api/v1/exams/patients/{p.id}/itinerary?day={day}",
                       headers=centre).json()["lines"]
    assert len(lines) == 2 and "甲状腺超声" in "".join(lines)


def test_the_console_books_an_adjusted_plan_and_shows_the_timeline(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    ids = [client.post("/api/v1/exams/orders", headers=doctor,
                       json={"patient_id": p.id, "exam_code": c}).json()["id"]
           for c in ("us_abdomen", "gastroscopy")]
    page = client.get("/exams/centre", headers=centre)
    assert page.status_code == 200 and f'data-patient="{p.id}"' in page.text
    assert client.get("/exams/centre", headers=doctor).status_code == 403
    plan = client.get(f"/exams/centre/patients/{p.id}", headers=centre)
    assert plan.status_code == 200 and "确认预约" in plan.text
    proposal = client.post("/api/v1/exams/plans", headers=centre,
                           json={"patient_id": p.id}).json()
    for v in proposal["visits"]:  # where to go: the room, not the building alone
        room = db.get_one(ExamResource, v["resource_id"])
        assert f"{room.building}{room.room} {room.name}" in plan.text
    slot = {v["order_id"]: v["slot_id"] for v in proposal["visits"]}
    # an adjustment that puts the ultrasound into the endoscopy room is refused: nothing booked
    # (fields that name no exam or no slot are no picks, not an error page)
    bad = client.post(f"/exams/centre/patients/{p.id}/book", headers=centre,
                      data={f"slot_{ids[0]}": str(slot[ids[1]]),
                            f"slot_{ids[1]}": str(slot[ids[1]]), "slot_abc": "1",
                            "slot_²": "1", "slot_99999999999999999999": "²"})
    assert bad.status_code == 409 and "flash error" in bad.text
    assert db.scalar(select(func.count()).select_from(ExamBooking).where(
        ExamBooking.patient_id == p.id)) == 0
    ok = client.post(f"/exams/centre/patients/{p.id}/book", headers=centre,
                     data={f"slot_{i}": str(slot[i]) for i in ids}, follow_redirects=False)
    assert ok.status_code == 303
    timeline = client.get(ok.headers["location"], headers=centre)
    assert timeline.status_code == 200
    assert timeline.text.index("腹部超声") < timeline.text.index("胃镜")
    assert meal(timeline.text) == "可以进食早餐"  # the fasting exams done early
    assert "打印行程单" in timeline.text and 'href="/exams/centre"' in timeline.text


def meal(page: str) -> str | None:
    found = re.search(r'data-kind="meal"><time>[\d:]+</time>\s*<strong>([^<]+)', page)
    return found.group(1) if found else None


def test_the_plan_page_lists_the_exams_booked_already(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    ecg, _us, abdomen = [client.post("/api/v1/exams/orders", headers=doctor,
                                     json={"patient_id": p.id, "exam_code": c}).json()["id"]
                         for c in ("ecg", "us_thyroid", "us_abdomen")]
    plan = client.post("/api/v1/exams/plans", headers=centre,
                       json={"patient_id": p.id, "order_ids": [ecg]}).json()
    r = client.post("/api/v1/exams/bookings", headers=centre, json={
        "patient_id": p.id, "visits": [{"order_id": ecg,
                                        "slot_id": plan["visits"][0]["slot_id"]}]})
    assert r.status_code == 201
    page = client.get(f"/exams/centre/patients/{p.id}", headers=centre)
    booked = re.search(r'<tr data-booked="ecg"[^>]*>(.*?)</tr>', page.text, re.S)
    assert booked is not None and "已预约" in booked.group(1)
    assert 'data-exam="us_thyroid"' in page.text and 'data-exam="ecg"' not in page.text
    # the fasting ultrasound at 11:30: the patient eats after it, lunch rather than breakfast
    late = next(x for x in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=2))
                if "us_abdomen" in x.exam_codes and x.start.astimezone(now.tzinfo).time()
                == time(11, 30))
    r = client.post("/api/v1/exams/bookings", headers=centre, json={
        "patient_id": p.id, "visits": [{"order_id": abdomen, "slot_id": late.slot_id}]})
    assert r.status_code == 201, r.text
    assert meal(client.get(f"/exams/patients/{p.id}/itinerary", headers=centre).text) == (
        "可以进食")


def test_the_centre_records_a_patient_who_came_fasting_and_plans_that_morning(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    """EX-2: a patient told of an abdominal ultrasound at 07:30 who has eaten nothing since
    last night has it that morning; a bad time is refused and changes nothing."""
    tz = get_settings().tz
    days = sorted({s.start.astimezone(tz).date() for s in service.free_slots(
        db, hospital_id=hospital.id, start=datetime.now(tz),
        end=datetime.now(tz) + timedelta(days=6)) if "us_abdomen" in s.exam_codes})
    day = days[1]
    now = datetime.combine(day, time(7, 30), tzinfo=tz)
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    assert client.post("/api/v1/exams/orders", headers=doctor, json={
        "patient_id": p.id, "exam_code": "us_abdomen"}).status_code == 201
    plan = client.get(f"/exams/centre/patients/{p.id}", headers=centre)
    assert f"{day:%m-%d} 0" not in plan.text and "data-fasting" not in plan.text
    later = (now + timedelta(hours=1)).isoformat()
    r = client.put(f"/api/v1/exams/patients/{p.id}/fasting", headers=centre,
                   json={"since": later})
    assert r.status_code == 422 and r.json()["code"] == "fasting_since_invalid"
    bad = client.post(f"/exams/centre/patients/{p.id}/fasting", headers=centre,
                      data={"since": "昨晚"})
    assert bad.status_code == 422 and "末次进食时间须在过去24小时内" in bad.text
    orders = client.get(f"/api/v1/exams/orders?patient_id={p.id}", headers=centre).json()
    assert [o["fasting_since"] for o in orders] == [None]
    last_night = datetime.combine(day - timedelta(days=1), time(21, 0))
    ok = client.post(f"/exams/centre/patients/{p.id}/fasting", headers=centre,
                     data={"since": last_night.strftime("%Y-%m-%dT%H:%M")},
                     follow_redirects=False)
    assert ok.status_code == 303
    plan = client.get(ok.headers["location"], headers=centre)
    assert "data-fasting" in plan.text and f"{day:%m-%d} 0" in plan.text
    r = client.put(f"/api/v1/exams/patients/{p.id}/fasting", headers=doctor,
                   json={"since": last_night.replace(tzinfo=tz).isoformat()})
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json()[0]["fasting_since"]) == last_night.replace(tzinfo=tz)


def test_the_plan_page_offers_only_times_that_keep_the_rules_with_the_other_exams(
        client: TestClient, db: Session, hospital: Hospital, now: datetime) -> None:
    """The times offered to adjust an exam leave out those that clash with an exam booked
    already or with the rest of the plan (the booking would refuse them)."""
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    doctor = auth(make_token(db, Role.doctor, hospital))
    centre = auth(make_token(db, Role.exam_centre, hospital))
    p = make_patient(db)
    ecg, thyroid = [client.post("/api/v1/exams/orders", headers=doctor,
                                json={"patient_id": p.id, "exam_code": c}).json()["id"]
                    for c in ("ecg", "us_thyroid")]
    plan = client.post("/api/v1/exams/plans", headers=centre,
                       json={"patient_id": p.id, "order_ids": [ecg]}).json()
    assert client.post("/api/v1/exams/bookings", headers=centre, json={
        "patient_id": p.id, "visits": [{"order_id": ecg, "slot_id": plan["visits"][0][
            "slot_id"]}]}).status_code == 201
    booked = db.scalars(select(ExamBooking).where(ExamBooking.order_id == ecg)).one()
    page = client.get(f"/exams/centre/patients/{p.id}", headers=centre).text
    select_html = re.search(rf'<select name="slot_{thyroid}".*?</select>', page, re.S)
    assert select_html is not None
    offered = {int(v) for v in re.findall(r'value="(\d+)"', select_html.group(0))}
    tz = get_settings().tz

    def clashes(s: FreeSlot) -> bool:
        return s.start < booked.end_at and s.start + timedelta(minutes=s.minutes) > (
            booked.start_at)

    same_day = [s for s in service.free_slots(db, hospital_id=hospital.id, start=now,
                                              end=now + timedelta(days=2))
                if "us_thyroid" in s.exam_codes
                and s.start.astimezone(tz).date() == booked.start_at.astimezone(tz).date()]
    assert any(clashes(s) for s in same_day)  # the plain list would offer such a time
    assert len(offered) > 1 and not any(clashes(s) for s in same_day if s.slot_id in offered)
