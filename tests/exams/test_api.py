"""The exam API and pages through the app (EX-1, EX-2): codes on bad input, nothing changed."""

from __future__ import annotations

from datetime import date, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.exams.models import ExamBooking, ExamOrder
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
    slot = {v["order_id"]: v["slot_id"] for v in proposal["visits"]}
    # an adjustment that puts the ultrasound into the endoscopy room is refused: nothing booked
    bad = client.post(f"/exams/centre/patients/{p.id}/book", headers=centre,
                      data={f"slot_{ids[0]}": str(slot[ids[1]]),
                            f"slot_{ids[1]}": str(slot[ids[1]])})
    assert bad.status_code == 409 and "flash error" in bad.text
    assert db.scalar(select(func.count()).select_from(ExamBooking).where(
        ExamBooking.patient_id == p.id)) == 0
    ok = client.post(f"/exams/centre/patients/{p.id}/book", headers=centre,
                     data={f"slot_{i}": str(slot[i]) for i in ids}, follow_redirects=False)
    assert ok.status_code == 303
    timeline = client.get(ok.headers["location"], headers=centre)
    assert timeline.status_code == 200
    assert timeline.text.index("腹部超声") < timeline.text.index("胃镜")
