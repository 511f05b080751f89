"""Organisation API shapes (one per direction)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.org.rules import ClinicDay, DayStatus, OverrideKind


class HospitalRead(BaseModel):
    code: str
    name: str
    short_name: str
    level: Literal["primary", "secondary", "tertiary"]
    kind: Literal["general", "specialist", "tcm", "primary_care"]
    alliance: str | None
    address: str
    phone: str

    @classmethod
    def of(cls, h: Hospital) -> HospitalRead:
        return cls(code=h.code, name=h.name, short_name=h.short_name, level=h.level,
                   kind=h.kind, alliance=h.alliance.name if h.alliance else None,
                   address=h.address, phone=h.phone)


class HospitalDetail(HospitalRead):
    introduction: str
    fees: dict[str, Decimal]


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    parent: str | None
    aliases: list[str]
    is_clinical: bool
    location: str | None

    @classmethod
    def of(cls, d: Department) -> DepartmentRead:
        return cls(code=d.code, name=d.name, parent=d.parent.code if d.parent else None,
                   aliases=list(d.aliases), is_clinical=d.is_clinical,
                   location=d.location.name if d.location else None)


class PractitionerRead(BaseModel):
    code: str
    hospital: str
    name: str
    title: str
    service_level: str
    departments: list[str]
    specialties: list[str]

    @classmethod
    def of(cls, p: Practitioner, hospital_code: str) -> PractitionerRead:
        return cls(code=p.code, hospital=hospital_code, name=p.name, title=p.title,
                   service_level=p.service_level, departments=[d.code for d in p.departments],
                   specialties=list(p.specialties))


class ClinicDayRead(BaseModel):
    date: date
    status: DayStatus
    is_clinic_day: bool | None
    reason: str
    source: str

    @classmethod
    def of(cls, d: ClinicDay) -> ClinicDayRead:
        return cls(date=d.day, status=d.status, is_clinic_day=d.is_clinic_day,
                   reason=d.reason, source=d.source)


class OverrideWrite(BaseModel):
    kind: OverrideKind
    name: str = Field(default="", max_length=100)


class SearchHit(BaseModel):
    type: Literal["department", "practitioner"]
    hospital: str
    code: str
    name: str
