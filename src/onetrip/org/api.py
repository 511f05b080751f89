"""/api/v1 routes of the organisation domain."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from onetrip.deps import DbSession, require_role
from onetrip.errors import InvalidInput, PermissionDenied
from onetrip.identity.rules import Role, may_administer_hospital
from onetrip.identity.service import Principal
from onetrip.org import calendar
from onetrip.org import service as org_service
from onetrip.org.rules import ClinicDay
from onetrip.org.schemas import (
    ClinicDayRead,
    DepartmentRead,
    HospitalDetail,
    HospitalRead,
    OverrideWrite,
    PractitionerRead,
    SearchHit,
)

router = APIRouter(prefix="/api/v1", tags=["organisation"])
CalendarAdmin = Annotated[Principal, Depends(require_role(Role.hospital_admin,
                                                           Role.regional_admin))]


@router.get("/hospitals", response_model=list[HospitalRead])
def list_hospitals(db: DbSession, region: str | None = None) -> list[HospitalRead]:
    return [HospitalRead.of(h) for h in org_service.list_hospitals(db, region_code=region)]


@router.get("/hospitals/{code}", response_model=HospitalDetail)
def read_hospital(code: str, db: DbSession) -> HospitalDetail:
    h = org_service.access_hospital(db, code)
    fees = {level: row.fee for level, row in org_service.service_level_fees(db, h).items()}
    return HospitalDetail(**HospitalRead.of(h).model_dump(), introduction=h.introduction,
                          fees=fees)


@router.get("/hospitals/{code}/departments", response_model=list[DepartmentRead])
def list_departments(code: str, db: DbSession) -> list[DepartmentRead]:
    hospital = org_service.access_hospital(db, code)
    return [DepartmentRead.of(d) for d in org_service.list_departments(db, hospital)]


@router.get("/practitioners", response_model=list[PractitionerRead])
def list_practitioners(
    db: DbSession,
    hospital: Annotated[str | None, Query(max_length=32)] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> list[PractitionerRead]:
    """Practitioners of a hospital, of a department (and its sub-departments), or both."""
    if hospital is None and department is None:
        raise InvalidInput("请至少指定医院或科室", detail={"fields": ["hospital", "department"]})
    hospitals = ([org_service.access_hospital(db, hospital)] if hospital
                 else org_service.list_hospitals(db))
    out: list[PractitionerRead] = []
    matched = False
    for h in hospitals:
        if department is None:
            rows = org_service.list_practitioners(db, hospital=h)
        else:
            dept = next((d for d in h.departments if d.code == department), None)
            if dept is None:
                continue
            rows = org_service.list_practitioners(db, hospital=h, department=dept)
        matched = True
        out.extend(PractitionerRead.of(p, h.code) for p in rows)
    if not matched:
        raise org_service.DepartmentNotFound(detail={"department": department})
    return out


@router.get("/search", response_model=list[SearchHit])
def search(db: DbSession, q: Annotated[str, Query(min_length=1, max_length=50)],
           hospital: str | None = None) -> list[SearchHit]:
    """Find departments and practitioners by Chinese name or pinyin initials (``xnk``)."""
    h = org_service.access_hospital(db, hospital) if hospital else None
    found = org_service.search(db, q, hospital=h)
    hospital_codes = {x.id: x.code for x in org_service.list_hospitals(db)}
    return [SearchHit(type="department", hospital=d.hospital.code, code=d.code, name=d.name)
            for d in found.departments] + [
        SearchHit(type="practitioner", hospital=hospital_codes[p.hospital_id], code=p.code,
                  name=p.name) for p in found.practitioners]


@router.get("/hospitals/{code}/calendar", response_model=list[ClinicDayRead])
def read_calendar(code: str, db: DbSession, start: date,
                  end: date | None = None) -> list[ClinicDayRead]:
    """Whether each date is a clinic day for this hospital, and why (at most 366 days)."""
    end = end or start
    if end - start > timedelta(days=366):
        raise InvalidInput("一次最多查询366天")
    hospital = org_service.access_hospital(db, code)
    days: list[ClinicDay] = calendar.clinic_days(db, hospital, start, end)
    return [ClinicDayRead.of(d) for d in days]


@router.put("/hospitals/{code}/calendar/{day}", response_model=ClinicDayRead)
def put_calendar_override(code: str, day: date, body: OverrideWrite, db: DbSession,
                          principal: CalendarAdmin) -> ClinicDayRead:
    """A hospital's own ruling on one date (admins of that hospital, or regional admins)."""
    hospital = org_service.access_hospital(db, code)
    if not may_administer_hospital(principal.role, principal.hospital_id, hospital.id):
        raise PermissionDenied()
    calendar.set_override(db, day=day, kind=body.kind, name=body.name, hospital=hospital,
                          source=f"api:{principal.label or principal.role.value}")
    return ClinicDayRead.of(calendar.clinic_day(db, hospital, day))
