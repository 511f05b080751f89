"""/api/v1/quality routes: the analyses, the review trail, imports and catalogues."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from onetrip.deps import DbSession, require_role
from onetrip.errors import PermissionDenied
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.quality import analyses, report
from onetrip.quality import service as quality_service
from onetrip.quality.readers import SUFFIXES, UnsupportedFile
from onetrip.quality.rules import CHECK_LABELS, Check, DatasetKind
from onetrip.quality.schemas import (
    DDDWrite,
    DoubleTenRead,
    FindingsRead,
    ImportRead,
    KeyDrugWrite,
    PrivilegeWrite,
    RankedDrugRead,
    ReviewRead,
    ReviewWrite,
)
from onetrip.quality.service import Viewer

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])
#: Findings are paged; no list of a hospital's month is a billion lines long.
MAX_OFFSET = 10**9
Staff = Annotated[Principal, Depends(require_role(*quality_service.VIEW_ROLES))]
Period = Annotated[str, Query(max_length=8, description="2026-10, 2026-Q4 or 2026-W43")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _viewer(db: DbSession, principal: Staff) -> Viewer:
    return quality_service.viewer_for(db, principal)


QualityViewer = Annotated[Viewer, Depends(_viewer)]


@router.get("/region")
def read_region(db: DbSession, viewer: QualityViewer, period: Period) -> list[dict[str, Any]]:
    """Headline indicators of every hospital (regional admins and the regulator)."""
    if not viewer.regional:
        raise PermissionDenied("只有区域管理员和卫健委可以查看全区域汇总")
    rows = analyses.regional_summary(db, viewer.hospitals, quality_service.period_of(period))
    return [{**{k: v for k, v in r.items() if k != "hospital"},
             "hospital": r["hospital"].code, "name": r["hospital"].name} for r in rows]


@router.get("/{hospital}/double-ten", response_model=DoubleTenRead)
def read_double_ten(hospital: str, db: DbSession, viewer: QualityViewer, period: Period,
                    department: str | None = None, prescriber: str | None = None
                    ) -> DoubleTenRead:
    """QA-1: top 10 drugs by amount and by quantity, with change and contributors."""
    h = quality_service.access_hospital(db, viewer, hospital)
    p = quality_service.period_of(period)
    ten, marks = analyses.double_ten(db, h, p, department=department, prescriber=prescriber)
    return DoubleTenRead(hospital=h.code, period=p.label, total_amount=ten.total_amount,
                         by_amount=[RankedDrugRead.of(d, marks.get(d.drug_code))
                                    for d in ten.by_amount],
                         by_quantity=[RankedDrugRead.of(d, marks.get(d.drug_code))
                                      for d in ten.by_quantity])


@router.get("/{hospital}/ratios")
def read_ratios(hospital: str, db: DbSession, viewer: QualityViewer,
                period: Period) -> dict[str, Any]:
    """QA-2: ratios per department (ranked), the 12-month trend and the drug shares."""
    h = quality_service.access_hospital(db, viewer, hospital)
    r = analyses.ratios(db, h, quality_service.period_of(period))
    return {"hospital": h.code, "period": r.period.label, "total": r.total,
            "shares": r.shares, "counts": r.counts, "trend": r.trend,
            "departments": [{"rank": d["rank"], "code": d["code"], "name": d["name"],
                             "income": vars(d["income"]), **d["indicators"]}
                            for d in r.departments]}


@router.get("/{hospital}/rational")
def read_rational(hospital: str, db: DbSession, viewer: QualityViewer,
                  period: Period) -> dict[str, Any]:
    """QA-3: antibacterial indicators, injection rate, and the findings of every check."""
    h = quality_service.access_hospital(db, viewer, hospital)
    r = analyses.rational(db, h, quality_service.period_of(period))
    return {"hospital": h.code, "period": period, "indicators": r.indicators,
            "counts": r.counts, "lines_without_ddd": r.lines_without_ddd,
            "findings": {c.value: {"label": CHECK_LABELS[c], "total": r.finding_counts[c],
                                   "prescriptions": r.findings[c]} for c in Check},
            "prescribers": r.prescribers}


@router.get("/{hospital}/findings/{check}", response_model=FindingsRead)
def read_findings(hospital: str, check: Check, db: DbSession, viewer: QualityViewer,
                  period: Period, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                  ) -> FindingsRead:
    """Every prescription one check found, 200 at a time."""
    h = quality_service.access_hospital(db, viewer, hospital)
    rows, total = analyses.findings(db, h, quality_service.period_of(period), check,
                                    offset=offset)
    return FindingsRead(check=check.value, label=CHECK_LABELS[check], total=total,
                        prescriptions=rows)


@router.get("/{hospital}/prescriptions/{prescription_id}")
def read_prescription(hospital: str, prescription_id: str, db: DbSession,
                      viewer: QualityViewer, period: Period) -> dict[str, Any]:
    """The lines of one prescription; the regulator gets them without the patient id."""
    h = quality_service.access_hospital(db, viewer, hospital)
    lines = analyses.prescription(db, h, prescription_id, quality_service.period_of(period))
    if not viewer.sees_patients:
        lines = [{k: v for k, v in line.items() if k != "patient_id"} for line in lines]
    return {"prescription_id": prescription_id, "lines": lines}


@router.post("/{hospital}/reviews", response_model=ReviewRead, status_code=201)
def create_review(hospital: str, body: ReviewWrite, db: DbSession,
                  viewer: QualityViewer) -> ReviewRead:
    """A pharmacist marks a listed drug or a prescription rational or irrational."""
    h = quality_service.access_hospital(db, viewer, hospital)
    quality_service.require_reviewer(viewer, h)
    extra: dict[str, str] = {}
    if body.drug_code:
        analyses.require_drug(db, h, body.drug_code, quality_service.period_of(body.period))
    if body.prescription_id:
        lines = analyses.prescription(db, h, body.prescription_id,
                                      quality_service.period_of(body.period))
        extra = {"prescriber_code": lines[0]["prescriber_code"],
                 "prescriber_name": lines[0]["prescriber_name"] or "",
                 "department_name": lines[0]["department_name"] or ""}
    row = quality_service.mark(db, hospital=h, period=body.period, verdict=body.verdict,
                               reason=body.reason, drug_code=body.drug_code,
                               prescription_id=body.prescription_id,
                               reviewer=viewer.principal.label or viewer.principal.role.value,
                               **extra)
    return ReviewRead.of(row)


@router.get("/{hospital}/irrational-prescribers")
def read_irrational_prescribers(hospital: str, db: DbSession, viewer: QualityViewer,
                                period: Period) -> list[dict[str, object]]:
    """Prescribers with prescriptions marked irrational in the period (for 约谈)."""
    h = quality_service.access_hospital(db, viewer, hospital)
    return quality_service.irrational_prescribers(
        db, h, quality_service.period_of(period).months())


@router.get("/{hospital}/imports", response_model=list[ImportRead])
def list_imports(hospital: str, db: DbSession, viewer: QualityViewer) -> list[ImportRead]:
    h = quality_service.access_hospital(db, viewer, hospital)
    return [ImportRead.of(r) for r in quality_service.list_imports(db, h)]


@router.post("/{hospital}/imports", response_model=ImportRead, status_code=201)
async def create_import(hospital: str, db: DbSession, viewer: QualityViewer,
                        kind: Annotated[DatasetKind, Form()],
                        period: Annotated[str, Form(max_length=8)],
                        file: Annotated[UploadFile, File()],
                        mapping: Annotated[str, Form(max_length=4000)] = "") -> ImportRead:
    """Import one month of an HIS export (CSV, .xlsx, .parquet); all rows or none."""
    h = quality_service.access_hospital(db, viewer, hospital)
    if not viewer.may_import(h):
        raise PermissionDenied("无权为该医院导入数据")
    row = await import_upload(db, h, kind, period, file, mapping, viewer)
    return ImportRead.of(row)


async def import_upload(db: DbSession, hospital: Any, kind: DatasetKind, period: str,
                        file: UploadFile, mapping: str, viewer: Viewer) -> Any:
    """Save an upload to a temporary file and import it (shared with the page)."""
    columns = quality_service.parse_mapping(mapping)
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in SUFFIXES:  # the client's name never names a file of ours
        raise UnsupportedFile(detail={"file": file.filename})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        return quality_service.import_file(
            db, hospital=hospital, kind=kind, period=period, source=path, mapping=columns,
            source_name=file.filename or "", imported_by=viewer.principal.label
            or viewer.principal.role.value)


@router.get("/{hospital}/report.xlsx")
def download_report(hospital: str, db: DbSession, viewer: QualityViewer,
                    period: Period) -> Response:
    """The monthly workbook (Excel) of one hospital."""
    h = quality_service.access_hospital(db, viewer, hospital)
    p = quality_service.period_of(period)
    return Response(report.workbook_bytes(db, h, p), media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="quality-{h.code}-{p.label}.xlsx"'})


@router.put("/{hospital}/privileges", status_code=204)
def put_privilege(hospital: str, body: PrivilegeWrite, db: DbSession,
                  viewer: QualityViewer) -> None:
    """Set a prescriber's antibacterial privilege (hospital admins and pharmacists)."""
    h = quality_service.access_hospital(db, viewer, hospital)
    if not viewer.may_import(h):
        raise PermissionDenied()
    quality_service.set_privilege(db, hospital=h, **body.model_dump())


@router.put("/{hospital}/ddd", status_code=204)
def put_ddd(hospital: str, body: DDDWrite, db: DbSession, viewer: QualityViewer) -> None:
    """Set the DDD value of an antibacterial product."""
    h = quality_service.access_hospital(db, viewer, hospital)
    if not viewer.may_import(h):
        raise PermissionDenied()
    quality_service.set_ddd(db, hospital=h, **body.model_dump())


@router.put("/key-drugs", status_code=204)
def put_key_drug(body: KeyDrugWrite, db: DbSession,
                 _admin: Annotated[Principal, Depends(require_role(Role.regional_admin))]
                 ) -> None:
    """Add or change an entry of the key-monitored drug catalogue (regional admins)."""
    quality_service.set_key_drug(db, **body.model_dump())
