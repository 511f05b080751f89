"""Plain factory functions: ``make_x(db, **overrides)``."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
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


def make_token(db: Session, role: Role, hospital: Hospital | None = None) -> str:
    _row, secret = identity_service.create_token(
        db, role=role, hospital_code=hospital.code if hospital else None)
    return secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
