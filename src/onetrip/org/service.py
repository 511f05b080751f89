"""Organisation use cases: look up hospitals, departments and practitioners; search."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from onetrip.errors import NotFound
from onetrip.org.models import Department, Hospital, Practitioner, Region, ServiceLevelFee
from onetrip.org.rules import normalise_query, search_keys


class HospitalNotFound(NotFound):
    code = "hospital_not_found"
    message = "未找到该医院"


class DepartmentNotFound(NotFound):
    code = "department_not_found"
    message = "未找到该科室"


class PractitionerNotFound(NotFound):
    code = "practitioner_not_found"
    message = "未找到该医生"


def list_regions(db: Session) -> list[Region]:
    return list(db.scalars(select(Region).order_by(Region.id)))


def list_hospitals(db: Session, *, region_code: str | None = None) -> list[Hospital]:
    """Hospitals, tertiary first, then by id."""
    stmt = select(Hospital).options(selectinload(Hospital.alliance))
    if region_code is not None:
        stmt = stmt.join(Region).where(Region.code == region_code)
    order = {"tertiary": 0, "secondary": 1, "primary": 2}
    return sorted(db.scalars(stmt), key=lambda h: (order[h.level], h.id))


def get_hospital(db: Session, code: str) -> Hospital | None:
    return db.scalar(select(Hospital).where(Hospital.code == code))


def access_hospital(db: Session, code: str) -> Hospital:
    """The hospital with this code; raises HospitalNotFound."""
    hospital = get_hospital(db, code)
    if hospital is None:
        raise HospitalNotFound(detail={"hospital": code})
    return hospital


def list_departments(db: Session, hospital: Hospital) -> list[Department]:
    return list(db.scalars(
        select(Department).where(Department.hospital_id == hospital.id)
        .options(selectinload(Department.location))
        .order_by(Department.sort_order, Department.id)
    ))


def access_department(db: Session, hospital: Hospital, code: str) -> Department:
    """The department of ``hospital`` with this code; raises DepartmentNotFound."""
    dept = db.scalar(select(Department).where(Department.hospital_id == hospital.id,
                                              Department.code == code))
    if dept is None:
        raise DepartmentNotFound(detail={"hospital": hospital.code, "department": code})
    return dept


def department_subtree(db: Session, department_ids: frozenset[int] | set[int]
                       ) -> frozenset[int]:
    """These departments and every department under them (内科 → 心血管内科, ...)."""
    found = set(department_ids)
    frontier = set(department_ids)
    while frontier:
        frontier = set(db.scalars(select(Department.id).where(
            Department.parent_id.in_(frontier)))) - found
        found |= frontier
    return frozenset(found)


def list_practitioners(db: Session, *, hospital: Hospital | None = None,
                       department: Department | None = None) -> list[Practitioner]:
    """Practitioners of a department (and its sub-departments), or of a hospital."""
    stmt = select(Practitioner).options(selectinload(Practitioner.departments))
    if department is not None:
        dept_ids = [department.id, *(c.id for c in department.children)]
        stmt = stmt.where(Practitioner.departments.any(Department.id.in_(dept_ids)))
    if hospital is not None:
        stmt = stmt.where(Practitioner.hospital_id == hospital.id)
    title_order = {"chief_physician": 0, "associate_chief_physician": 1,
                   "attending_physician": 2, "resident_physician": 3}
    return sorted(db.scalars(stmt), key=lambda p: (title_order[p.title], p.id))


def access_practitioner(db: Session, hospital: Hospital, code: str) -> Practitioner:
    """The practitioner of ``hospital`` with this code; raises PractitionerNotFound."""
    row = db.scalar(select(Practitioner).where(Practitioner.hospital_id == hospital.id,
                                               Practitioner.code == code))
    if row is None:
        raise PractitionerNotFound(detail={"hospital": hospital.code, "practitioner": code})
    return row


def service_level_fees(db: Session, hospital: Hospital) -> dict[str, ServiceLevelFee]:
    rows = db.scalars(select(ServiceLevelFee).where(ServiceLevelFee.hospital_id == hospital.id))
    return {row.service_level: row for row in rows}


def refresh_search_keys(item: Hospital | Department | Practitioner) -> None:
    """Recompute an item's pinyin search keys from its names; call after renaming it."""
    if isinstance(item, Department):
        item.search_keys = search_keys(item.name, *(item.aliases or []))
    elif isinstance(item, Practitioner):
        item.search_keys = search_keys(item.name)
    else:
        item.search_keys = search_keys(item.name, item.short_name or "")


@dataclass(frozen=True)
class SearchResults:
    departments: list[Department]
    practitioners: list[Practitioner]


def _rank(keys: str, query: str) -> int:
    words = keys.split()
    if query in words:
        return 0
    if any(w.startswith(query) for w in words):
        return 1
    return 2


def search(db: Session, query: str, *, hospital: Hospital | None = None,
           limit: int = 20) -> SearchResults:
    """Departments and practitioners matching a Chinese name or pinyin initials/full pinyin.

    ``xnk`` finds 心血管内科 through its alias 心内科; ``xxg`` finds it by its own name.
    """
    q = normalise_query(query)
    if not q:
        return SearchResults([], [])
    pattern = f"%{q}%"
    dstmt = (select(Department).where(Department.search_keys.like(pattern))
             .options(selectinload(Department.hospital)))
    pstmt = (select(Practitioner).where(Practitioner.search_keys.like(pattern))
             .options(selectinload(Practitioner.departments)))
    if hospital is not None:
        dstmt = dstmt.where(Department.hospital_id == hospital.id)
        pstmt = pstmt.where(Practitioner.hospital_id == hospital.id)
    depts = sorted(db.scalars(dstmt.limit(200)),
                   key=lambda d: (_rank(d.search_keys, q), not d.is_clinical, d.hospital_id, d.id))
    pracs = sorted(db.scalars(pstmt.limit(200)),
                   key=lambda p: (_rank(p.search_keys, q), p.hospital_id, p.id))
    return SearchResults(depts[:limit], pracs[:limit])
