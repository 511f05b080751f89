"""The access matrix (issue 3, item 6): every patient-data endpoint, API and pages, against
every role and anonymous; exactly the allowed roles succeed (0 unexpected allows)."""

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
from onetrip.identity.models import Account, AuditEvent, FamilyMember
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
from tests.factories import auth, make_account, make_patient, make_token, mobile, resident_id


def _token(db: Session, role: Role) -> str:
    hospital = org_service.access_hospital(db, "sfsrmyy")
    return make_token(db, role, hospital if role in identity_auth.HOSPITAL_SCOPED else None)


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


def _new_person_form() -> dict[str, Any]:
    return {k: v for k, v in _new_person().items() if k != "relationship"}


STAFF_DOCS = frozenset({Role.window, Role.hospital_admin})
# (name, method, path, body, roles expected to be allowed); a body in a tuple is a form.
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
    ("change phone", "PUT", "/api/v1/patients/{own}/phone", {"phone": "13600006666"},
     REVEALERS),
    ("verify offline", "POST", "/api/v1/patients/{own}/verification", {"method": "offline"},
     REVEALERS),
    ("my family", "GET", "/api/v1/me/family", None, ACCOUNT_ROLES),
    ("duplicates", "GET", "/api/v1/empi/duplicates", None, EMPI_ADMINS),
    ("merge", "POST", "/api/v1/empi/merges", "merge", EMPI_ADMINS),
    ("unmerge", "POST", "/api/v1/empi/merges/{merge_id}/unmerge", None, EMPI_ADMINS),
    ("audit", "GET", "/api/v1/audit?patient_id={own}", None, EMPI_ADMINS),
    # booking (issue 4): a patient's appointments and rebooking offers
    ("appointments own", "GET", "/api/v1/appointments?patient_id={own}", None,
     CARE_STAFF | ACCOUNT_ROLES),
    ("appointments other", "GET", "/api/v1/appointments?patient_id={other}", None, CARE_STAFF),
    ("rebooking offers own", "GET", "/api/v1/rebooking-offers?patient_id={own}", None,
     CARE_STAFF | ACCOUNT_ROLES),
    # pages
    ("page my family", "GET", "/me/family", None, ACCOUNT_ROLES),
    ("page add member form", "GET", "/me/family/new", None, ACCOUNT_ROLES),
    ("page add member", "POST", "/me/family/new", (_new_person,), ACCOUNT_ROLES),
    ("page patient search form", "GET", "/staff/patients", None, CARE_STAFF),
    ("page patient search", "POST", "/staff/patients", ({"by": "name", "name": "吴"},),
     CARE_STAFF),
    ("page desk registration form", "GET", "/staff/patients/new", None, REGISTRARS),
    ("page desk registration", "POST", "/staff/patients/new", (_new_person_form,),
     REGISTRARS),
    ("page duplicates", "GET", "/staff/duplicates", None, EMPI_ADMINS),
    ("page merge", "POST", "/staff/merges", ("merge",), EMPI_ADMINS),
    ("page unmerge", "POST", "/staff/merges/{merge_id}/unmerge", None, EMPI_ADMINS),
    ("page audit", "GET", "/staff/audit?patient_id={own}", None, EMPI_ADMINS),
]
ROLES: list[Role | None] = [None, *Role]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("role", ROLES, ids=[r.value if r else "anonymous" for r in ROLES])
def test_access_matrix_has_no_unexpected_allows(
        client: TestClient, db: Session, world: World,
        endpoint: tuple[str, str, str, Any, frozenset[Role]], role: Role | None) -> None:
    name, method, path, body, allowed = endpoint
    url = path.format(own=world.own, other=world.other, merge_id=world.merge_id)
    is_form = isinstance(body, tuple)
    if is_form:
        body = body[0]
    if body == "merge":
        body = ({"source": world.dup_source, "target": world.dup_target} if is_form else
                {"source_patient_id": world.dup_source, "target_patient_id": world.dup_target})
    elif callable(body):
        body = body()
    before = db.scalar(select(func.count(AuditEvent.id)))
    headers = world.headers[role] if role else {}
    if is_form:
        r = client.request(method, url, data=body, headers=headers)
    else:
        r = client.request(method, url, json=body, headers=headers)
    # Patient pages send strangers to the SMS sign-in page instead of refusing outright.
    succeeded = 200 <= r.status_code < 300 and r.url.path != "/sign-in"
    expected = role in allowed
    assert succeeded == expected, (name, role, r.status_code, r.url.path, r.text[:300])
    if not expected and url.startswith("/api/"):
        assert r.status_code == (401 if role is None else 403), r.text
    if role is not None and "/patients/{own}" in path:
        # Patient-data endpoints leave audit rows either way (a denial included).
        assert (db.scalar(select(func.count(AuditEvent.id))) or 0) > (before or 0)
