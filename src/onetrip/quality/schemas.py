"""Quality API shapes (one per direction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from onetrip.quality.engine import RankedDrug
from onetrip.quality.models import DataImport, Review
from onetrip.quality.rules import Verdict


class ImportRead(BaseModel):
    kind: str
    period: str
    rows: int
    version: int
    source_name: str
    imported_at: datetime

    @classmethod
    def of(cls, row: DataImport) -> ImportRead:
        return cls(kind=row.kind, period=row.period, rows=row.rows, version=row.version,
                   source_name=row.source_name, imported_at=row.imported_at)


class Contributor(BaseModel):
    prescriber_code: str
    prescriber_name: str | None
    department_name: str | None
    amount: float
    quantity: float


class RankedDrugRead(BaseModel):
    rank: int
    drug_code: str
    generic_name: str
    specification: str
    unit: str
    amount: float
    quantity: float
    lines: int
    prev_rank: int | None
    prev_amount: float | None
    prev_quantity: float | None
    change: float | None
    contributors: list[Contributor]
    verdict: Verdict | None = None
    reason: str = ""

    @classmethod
    def of(cls, d: RankedDrug, mark: Review | None) -> RankedDrugRead:
        return cls(**{k: getattr(d, k) for k in (
            "rank", "drug_code", "generic_name", "specification", "unit", "amount",
            "quantity", "lines", "prev_rank", "prev_amount", "prev_quantity", "change")},
            contributors=[Contributor(**c) for c in d.contributors],
            verdict=Verdict(mark.verdict) if mark else None, reason=mark.reason if mark else "")


class DoubleTenRead(BaseModel):
    hospital: str
    period: str
    total_amount: float
    by_amount: list[RankedDrugRead]
    by_quantity: list[RankedDrugRead]


class ReviewWrite(BaseModel):
    period: str = Field(max_length=8)
    verdict: Verdict
    reason: str = Field(default="", max_length=500)
    drug_code: str = Field(default="", max_length=64)
    prescription_id: str = Field(default="", max_length=64)


class ReviewRead(BaseModel):
    target: Literal["drug", "prescription"]
    period: str
    drug_code: str
    prescription_id: str
    verdict: Verdict
    reason: str
    prescriber_code: str
    reviewer: str
    reviewed_at: datetime

    @classmethod
    def of(cls, r: Review) -> ReviewRead:
        return cls(target=r.target, period=r.period, drug_code=r.drug_code,
                   prescription_id=r.prescription_id, verdict=Verdict(r.verdict),
                   reason=r.reason, prescriber_code=r.prescriber_code, reviewer=r.reviewer,
                   reviewed_at=r.reviewed_at)


class FindingsRead(BaseModel):
    check: str
    label: str
    total: int
    prescriptions: list[dict[str, Any]]


class PrivilegeWrite(BaseModel):
    prescriber_code: str = Field(min_length=1, max_length=64)
    prescriber_name: str = Field(default="", max_length=100)
    max_grade: Literal["unrestricted", "restricted", "special"]


class DDDWrite(BaseModel):
    drug_code: str = Field(min_length=1, max_length=64)
    generic_name: str = Field(default="", max_length=100)
    ddd_g: float = Field(gt=0)
    unit_g: float = Field(gt=0)


class KeyDrugWrite(BaseModel):
    generic_name: str = Field(min_length=1, max_length=100)
    catalogue: str = Field(default="", max_length=100)
    active: bool = True
