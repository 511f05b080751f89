"""A hospital's detail (introduction and registration fee per service level) and a doctor's
page: the portal's hospital introduction and expert team (BK-11)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.org.models import Hospital, ServiceLevelFee
from tests.factories import make_department, make_hospital, make_practitioner

FEES = {"general": Decimal("12.00"), "expert": Decimal("35.50")}


@pytest.fixture
def hospital(db: Session) -> Hospital:
    h = make_hospital(db, level="tertiary", introduction="一所测试用的三级综合医院。",
                      address="示范市解放路1号")
    for level, fee in FEES.items():
        db.add(ServiceLevelFee(hospital_id=h.id, service_level=level, fee=fee))
    db.flush()
    return h


def test_bk11_hospital_detail_has_its_introduction_and_fees_per_service_level(
        client: TestClient, hospital: Hospital) -> None:
    r = client.get(f"/api/v1/hospitals/{hospital.code}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["code"], body["name"], body["level"], body["kind"]) == (
        hospital.code, hospital.name, hospital.level, hospital.kind)
    assert body["introduction"] == hospital.introduction
    assert body["address"] == hospital.address
    assert {level: Decimal(str(fee)) for level, fee in body["fees"].items()} == FEES


def test_a_hospital_without_fees_lists_none_and_another_hospitals_fees_do_not_leak(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    bare = make_hospital(db)
    r = client.get(f"/api/v1/hospitals/{bare.code}")
    assert r.status_code == 200 and r.json()["fees"] == {}
    assert r.json()["introduction"] == ""


def test_an_unknown_hospital_is_404_with_its_code(client: TestClient, db: Session) -> None:
    before = db.scalar(select(func.count()).select_from(Hospital))
    r = client.get("/api/v1/hospitals/no-such-hospital")
    assert r.status_code == 404
    assert r.json()["code"] == "hospital_not_found"
    assert r.json()["detail"] == {"hospital": "no-such-hospital"}
    assert db.scalar(select(func.count()).select_from(Hospital)) == before


def test_bk11_the_doctor_page_shows_the_doctor_and_their_department(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    dept = make_department(db, hospital, name="呼吸内科")
    doc = make_practitioner(db, hospital, dept, name="欧阳明", title="chief_physician",
                            service_level="expert", specialties=["慢阻肺", "哮喘"],
                            introduction="从事呼吸内科临床工作二十年。")
    r = client.get(f"/hospitals/{hospital.code}/practitioners/{doc.code}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f"<h1>{doc.name} " in r.text and hospital.name in r.text
    assert f'href="/hospitals/{hospital.code}/departments/{dept.code}">{dept.name}</a>' in r.text
    assert "慢阻肺、哮喘" in r.text and doc.introduction in r.text


def test_an_unknown_doctor_or_another_hospitals_doctor_is_404(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    elsewhere = make_practitioner(db, make_hospital(db), name="司马远")
    for path in (f"/hospitals/{hospital.code}/practitioners/nobody",
                 f"/hospitals/{hospital.code}/practitioners/{elsewhere.code}"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "未找到该医生" in r.text and elsewhere.name not in r.text
    r = client.get(f"/hospitals/no-such-hospital/practitioners/{elsewhere.code}")
    assert r.status_code == 404 and "未找到该医院" in r.text
