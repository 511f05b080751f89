"""The identity JSON API: registration, reading, sign-in, and the access matrix."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Patient
from onetrip.identity.rules import (
    Role,
)
from onetrip.org import service as org_service
from tests.factories import (
    auth,
    last_sms_code,
    make_patient,
    make_token,
    mobile,
    resident_id,
)


def _token(db: Session, role: Role) -> str:
    hospital = org_service.access_hospital(db, "sfsrmyy")
    return make_token(db, role, hospital if role in identity_auth.HOSPITAL_SCOPED else None)


def test_id1_post_patients_201_then_200_with_the_master_id(client: TestClient,
                                                           db: Session) -> None:
    headers = auth(_token(db, Role.window))
    number = resident_id(date(1988, 8, 8))
    body = {"name": "赵敏", "document_type": "resident_id_card", "document_number": number,
            "phone": "13912340000"}
    r = client.post("/api/v1/patients", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["phone"] == "139****0000"
    assert created["documents"][0]["number"] == number[:6] + "********" + number[-4:]
    r = client.post("/api/v1/patients", json={**body, "phone": "13912340001"}, headers=headers)
    assert r.status_code == 200 and r.json()["id"] == created["id"]
    r = client.get(f"/api/v1/patients/{created['id']}", headers=headers)
    assert r.status_code == 200 and number not in r.text


@pytest.mark.parametrize(("patch", "code"), [
    ({"document_number": "110105194912310021"}, "invalid_check_digit"),
    ({"document_number": "11010519490230002X"}, "invalid_birth_date"),
    ({"document_number": "99010519491231002X"}, "unknown_region_code"),
    ({"document_type": "passport", "document_number": "AB-12", "birth_date": "1980-01-01"},
     "invalid_document"),
    ({"phone": "12345"}, "invalid_phone"),
    ({"document_type": "passport", "document_number": "E12345678"}, "birth_date_required"),
    ({"document_type": "nonsense"}, "invalid_request"),
])
def test_bad_input_is_422_with_a_specific_code_and_writes_nothing(
        client: TestClient, db: Session, patch: dict[str, str], code: str) -> None:
    headers = auth(_token(db, Role.window))
    db.commit()
    before = db.scalar(select(func.count(Patient.id)))
    body = {"name": "张三", "document_type": "resident_id_card",
            "document_number": "11010519491231002X", "phone": "13812345678", **patch}
    r = client.post("/api/v1/patients", json=body, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == code
    assert "message" in r.json() and r.json()["message"]
    assert body["document_number"] not in r.text
    assert db.scalar(select(func.count(Patient.id))) == before


def test_known_document_under_another_name_is_422(client: TestClient, db: Session) -> None:
    headers = auth(_token(db, Role.window))
    number = resident_id(date(1977, 7, 7))
    make_patient(db, name="孙丽", document_number=number)
    db.commit()
    r = client.post("/api/v1/patients", headers=headers, json={
        "name": "孙莉", "document_type": "resident_id_card", "document_number": number,
        "phone": mobile()})
    assert r.status_code == 422 and r.json()["code"] == "document_name_mismatch"


def test_sms_sign_in_then_register_self_and_a_child(client: TestClient, db: Session) -> None:
    phone = mobile()
    assert client.post("/api/v1/auth/sms-codes", json={"phone": phone}).status_code == 202
    r = client.post("/api/v1/auth/sms-codes", json={"phone": phone})
    assert r.status_code == 429 and r.json()["code"] == "sms_too_frequent"
    r = client.post("/api/v1/auth/sms-sign-in", json={"phone": phone, "code": "000000"
                    if last_sms_code(db, phone) != "000000" else "111111"})
    assert r.status_code == 401 and r.json()["code"] == "sms_code_invalid"
    r = client.post("/api/v1/auth/sms-sign-in",
                    json={"phone": phone, "code": last_sms_code(db, phone)})
    assert r.status_code == 200 and r.json()["role"] == "proxy"
    me = client.post("/api/v1/patients", json={
        "name": "钱伟", "document_type": "resident_id_card", "phone": phone,
        "document_number": resident_id(date(1984, 2, 2))})
    assert me.status_code == 201
    kid = client.post("/api/v1/patients", json={
        "name": "钱小伟", "document_type": "household_register", "phone": phone,
        "relationship": "child",
        "document_number": resident_id(date(date.today().year - 4, 3, 3))})
    assert kid.status_code == 201, kid.text
    family = client.get("/api/v1/me/family").json()
    assert [(m["relationship"], m["label"]) for m in family] == [("self", "本人"),
                                                                  ("child", "子女")]
    assert client.post("/api/v1/auth/sign-out").status_code == 204
    assert client.get("/api/v1/me/family").status_code == 401


def test_staff_sign_in_api_counts_failures_and_locks(client: TestClient, db: Session) -> None:
    new = identity_auth.create_staff(db, username="api-win", name="窗口甲", role=Role.window,
                                     hospital_code="sfsrmyy")
    db.commit()
    for _ in range(4):
        r = client.post("/api/v1/auth/staff-sign-in",
                        json={"username": "api-win", "password": "wrong"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = client.post("/api/v1/auth/staff-sign-in", json={"username": "api-win",
                                                        "password": "wrong"})
    assert r.status_code == 423 and r.json()["code"] == "account_locked"
    r = client.post("/api/v1/auth/staff-sign-in", json={"username": "api-win",
                                                        "password": new.password})
    assert r.status_code == 423
