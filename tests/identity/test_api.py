"""The identity JSON API: registration, reading, sign-in, and the access matrix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import auth as identity_auth
from onetrip.identity import empi
from onetrip.identity.models import Account, AuditEvent, FamilyMember, Patient
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    ACCOUNT_ROLES,
    CARE_STAFF,
    EMPI_ADMINS,
    REGISTRARS,
    REVEALERS,
    DocumentType,
    Role,
)
from onetrip.org import service as org_service
from tests.factories import (
    auth,
    last_sms_code,
    make_account,
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


# --- the access matrix (issue 3, item 6) ----------------------------------------------------


@dataclass
class World:
    own: int
    other: int
    dup_source: int
    dup_target: int
    merge_id: int
    headers: dict[Role, dict[str, str]]


def _session_headers(db: Session, account_id: int) -> dict[str, str]:
    account = db.get(Account, account_id)
    assert account is not None
    return auth(identity_auth.start_session(db, account=account))


@pytest.fixture
def world(db: Session) -> World:
    patient_acct = make_account(db)
    own = make_patient(db, principal=patient_acct)
    proxy_acct = make_account(db)
    assert proxy_acct.account_id is not None and patient_acct.account_id is not None
    db.add(FamilyMember(account_id=proxy_acct.account_id, patient_id=own.id, relation="parent"))
    other = make_patient(db)
    phone = mobile()
    a = make_patient(db, name="吴芳", phone=phone, birth_date=date(1966, 6, 6))
    b = make_patient(db, name="吴芳", phone=phone, birth_date=date(1966, 6, 6),
                     document_type=DocumentType.passport, document_number="E66606666")
    c = make_patient(db, name="郑凯", phone=phone, birth_date=date(1955, 5, 5))
    d = make_patient(db, name="郑凯", phone=phone, birth_date=date(1955, 5, 5),
                     document_type=DocumentType.passport, document_number="E55505555")
    admin = Principal(role=Role.regional_admin, label="setup")
    merge = empi.merge_patients(db, admin, source_id=d.id, target_id=c.id)
    headers = {role: auth(_token(db, role)) for role in Role
               if role not in ACCOUNT_ROLES}
    headers[Role.patient] = _session_headers(db, patient_acct.account_id)
    headers[Role.proxy] = _session_headers(db, proxy_acct.account_id)
    db.commit()
    return World(own.id, other.id, b.id, a.id, merge.id, headers)


def _new_person() -> dict[str, Any]:
    return {"name": "冯新", "document_type": "resident_id_card", "phone": mobile(),
            "document_number": resident_id(date(1960, 1, 1)), "relationship": "parent"}


STAFF_DOCS = frozenset({Role.window, Role.hospital_admin})
# (name, method, path, body, roles expected to be allowed)
ENDPOINTS: list[tuple[str, str, str, Any, frozenset[Role]]] = [
    ("read own", "GET", "/api/v1/patients/{own}", None, CARE_STAFF | ACCOUNT_ROLES),
    ("read other", "GET", "/api/v1/patients/{other}", None, CARE_STAFF),
    ("reveal own", "GET", "/api/v1/patients/{own}/identity", None, REVEALERS),
    ("register", "POST", "/api/v1/patients", _new_person, REGISTRARS | ACCOUNT_ROLES),
    ("search", "POST", "/api/v1/patients/search", {"name": "吴"}, CARE_STAFF),
    ("card lookup", "POST", "/api/v1/patients/lookup",
     {"document_type": "passport", "document_number": "E66606666"}, CARE_STAFF | {Role.kiosk}),
    ("add document own", "POST", "/api/v1/patients/{own}/documents",
     {"document_type": "health_card", "document_number": "C" * 64}, STAFF_DOCS | ACCOUNT_ROLES),
    ("add document other", "POST", "/api/v1/patients/{other}/documents",
     {"document_type": "health_card", "document_number": "D" * 64}, STAFF_DOCS),
    ("verify offline", "POST", "/api/v1/patients/{own}/verification", {"method": "offline"},
     REVEALERS),
    ("my family", "GET", "/api/v1/me/family", None, ACCOUNT_ROLES),
    ("duplicates", "GET", "/api/v1/empi/duplicates", None, EMPI_ADMINS),
    ("merge", "POST", "/api/v1/empi/merges", "merge", EMPI_ADMINS),
    ("unmerge", "POST", "/api/v1/empi/merges/{merge_id}/unmerge", None, EMPI_ADMINS),
    ("audit", "GET", "/api/v1/audit?patient_id={own}", None, EMPI_ADMINS),
]
ROLES: list[Role | None] = [None, *Role]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("role", ROLES, ids=[r.value if r else "anonymous" for r in ROLES])
def test_access_matrix_has_no_unexpected_allows(
        client: TestClient, db: Session, world: World,
        endpoint: tuple[str, str, str, Any, frozenset[Role]], role: Role | None) -> None:
    name, method, path, body, allowed = endpoint
    url = path.format(own=world.own, other=world.other, merge_id=world.merge_id)
    if body == "merge":
        body = {"source_patient_id": world.dup_source, "target_patient_id": world.dup_target}
    elif callable(body):
        body = body()
    before = db.scalar(select(func.count(AuditEvent.id)))
    headers = world.headers[role] if role else {}
    r = client.request(method, url, json=body, headers=headers)
    expected = role in allowed
    assert (200 <= r.status_code < 300) == expected, (name, role, r.status_code, r.text)
    if not expected:
        assert r.status_code == (401 if role is None else 403), r.text
    if role is not None and "/patients/{own}" in path:
        # Patient-data endpoints leave audit rows either way (a denial included).
        assert (db.scalar(select(func.count(AuditEvent.id))) or 0) > (before or 0)
