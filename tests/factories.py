"""Plain factory functions: ``make_x(db, **overrides)``."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    DEPARTMENT_SCOPED,
    DocumentType,
    Relationship,
    Role,
    resident_id_check_char,
)
from onetrip.org.models import Department, Hospital, Practitioner, Region
from onetrip.org.service import refresh_search_keys

_seq = itertools.count(1)


def make_region(db: Session, **kw: Any) -> Region:
    n = next(_seq)
    region = Region(**{"code": f"r{n}", "name": f"测试区{n}", **kw})
    db.add(region)
    db.flush()
    return region


def make_hospital(db: Session, region: Region | None = None, **kw: Any) -> Hospital:
    n = next(_seq)
    region = region or make_region(db)
    h = Hospital(**{"region_id": region.id, "code": f"h{n}", "name": f"测试医院{n}",
                    "level": "secondary", "kind": "general", **kw})
    refresh_search_keys(h)
    db.add(h)
    db.flush()
    return h


def make_department(db: Session, hospital: Hospital, **kw: Any) -> Department:
    n = next(_seq)
    d = Department(**{"hospital_id": hospital.id, "code": f"d{n}", "name": f"测试科{n}", **kw})
    refresh_search_keys(d)
    db.add(d)
    db.flush()
    return d


def make_practitioner(db: Session, hospital: Hospital, department: Department | None = None,
                      **kw: Any) -> Practitioner:
    n = next(_seq)
    p = Practitioner(**{"hospital_id": hospital.id, "code": f"p{n}", "name": f"张{n}",
                        "title": "attending_physician", **kw})
    refresh_search_keys(p)
    if department is not None:
        p.departments.append(department)
    db.add(p)
    db.flush()
    return p


def make_token(db: Session, role: Role, hospital: Hospital | None = None,
               department: Department | None = None) -> str:
    """A bearer token; a department admin's defaults to the hospital's first department."""
    if department is None and role in DEPARTMENT_SCOPED and hospital is not None:
        department = db.scalars(select(Department).where(
            Department.hospital_id == hospital.id).order_by(Department.id)).first()
    _row, secret = identity_service.create_token(
        db, role=role, hospital_code=hospital.code if hospital else None,
        department_code=department.code if department else None)
    return secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def resident_id(birth: date, region: str = "330602", seq: str | None = None) -> str:
    """A valid 18-character resident ID number (GB 11643) for a birth date."""
    seq = seq or f"{next(_seq) % 1000:03d}"
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + resident_id_check_char(first17)


def mobile() -> str:
    """A distinct valid Chinese mobile number (139 0000 xxxx)."""
    return f"1390000{next(_seq) % 10000:04d}"


WINDOW = Principal(role=Role.window, hospital_id=None, label="tests")


def make_patient(db: Session, *, principal: Principal = WINDOW,
                 document_type: DocumentType = DocumentType.resident_id_card,
                 relationship: Relationship | None = None, **kw: Any) -> Patient:
    """Register a real-name patient (a resident ID card by default)."""
    birth = kw.pop("birth_date", date(1980, 1, 1))
    if document_type in (DocumentType.resident_id_card, DocumentType.social_security_card,
                         DocumentType.household_register):
        number = kw.pop("document_number", resident_id(birth))
        born = None
    else:
        number = kw.pop("document_number")
        born = birth
    digits = "".join("零一二三四五六七八九"[int(c)] for c in str(next(_seq)))
    args: dict[str, Any] = {"name": f"测试{digits}", "phone": mobile(), **kw}
    return identity_service.register_patient(
        db, principal, document_type=document_type, document_number=number, birth_date=born,
        relationship=relationship, **args).patient


def make_account(db: Session, phone: str | None = None) -> Principal:
    """A phone account with no family yet, as the principal of its sign-in session."""
    from onetrip.identity.crypto import keyring
    from onetrip.identity.models import Account

    e164 = "+86" + (phone or mobile())
    acc = Account(phone_cipher=keyring().encrypt(e164, purpose="phone"),
                  phone_index=identity_service.phone_index(e164))
    db.add(acc)
    db.flush()
    return Principal(role=Role.proxy, account_id=acc.id)


def account_principal(db: Session, p: Principal) -> Principal:
    """The account's principal as a new request would see it (role and family re-read)."""
    assert p.account_id is not None
    return Principal(role=identity_service.account_role(db, p.account_id),
                     account_id=p.account_id,
                     patient_ids=identity_service.account_patient_ids(db, p.account_id))


def last_sms_code(db: Session, phone: str) -> str:
    """The code in the latest message of the development SMS outbox to ``phone``."""
    import re

    from onetrip.identity import sms

    body = sms.outbox_messages(db, phone, limit=1)[0].body
    match = re.search(r"验证码为(\d{6})", body)
    assert match, "no code in the outbox"
    return match.group(1)
