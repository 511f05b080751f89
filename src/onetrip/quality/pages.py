"""Quality pages: dashboard with charts, double ten with review marks, rational-use findings
(each linking to its prescriptions), prescription detail, import and the workbook."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.deps import DbSession, OptionalPrincipal
from onetrip.errors import OnetripError, PermissionDenied
from onetrip.org.models import Hospital
from onetrip.quality import analyses, report
from onetrip.quality import service as quality_service
from onetrip.quality.api import MAX_OFFSET, XLSX, import_upload
from onetrip.quality.models import DataImport, Review
from onetrip.quality.rules import (
    CHECK_LABELS,
    COMMON_REASONS,
    DATASET_LABELS,
    GRADE_LABELS,
    Check,
    DatasetKind,
    Period,
    Verdict,
)
from onetrip.quality.service import Viewer
from onetrip.web import link_int, render_page

router = APIRouter(include_in_schema=False)
VISIT_LABELS = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院"}


class _SignInRequired(OnetripError):
    code = "not_authenticated"
    http_status = 401
    message = "请先以药师、管理员或监管身份登录"


def _viewer(db: DbSession, principal: OptionalPrincipal) -> Viewer:
    if principal is None:
        raise _SignInRequired()
    return quality_service.viewer_for(db, principal)


QualityViewer = Annotated[Viewer, Depends(_viewer)]
PeriodQ = Annotated[str | None, Query(max_length=8)]


def _latest_period(db: Session, hospital: Hospital) -> str:
    label = db.scalar(select(DataImport.period).where(
        DataImport.hospital_id == hospital.id,
        DataImport.kind == DatasetKind.prescriptions.value)
        .order_by(DataImport.period.desc()).limit(1))
    if label:
        return label
    today = utcnow().astimezone(get_settings().tz)
    return f"{today.year:04d}-{today.month:02d}"


def _scope(db: Session, viewer: Viewer, hospital: str | None,
           period: str | None) -> tuple[Hospital, Period]:
    h = quality_service.access_hospital(db, viewer, hospital)
    return h, quality_service.period_of(period or _latest_period(db, h))


def _base(viewer: Viewer, h: Hospital, p: Period, **extra: Any) -> dict[str, Any]:
    return {"viewer": viewer, "hospital": h, "period": p, "hospitals": viewer.hospitals,
            "q": urlencode({"hospital": h.code, "period": p.label}),
            "check_labels": CHECK_LABELS, "visit_labels": VISIT_LABELS,
            "grade_labels": GRADE_LABELS, **extra}


#: Flash codes of the review pages; anything else a link brings shows nothing.
_REVIEW_FLASHES = {"reviewed": "已保存点评结果"}


def _import_flash(db: Session, hospital: Hospital, flash: str, import_id: str) -> str | None:
    """「已导入…」 read from the import the link names, if it is one of this hospital's."""
    row_id = link_int(import_id)
    row = db.get(DataImport, row_id) if flash == "imported" and row_id is not None else None
    if row is None or row.hospital_id != hospital.id:
        return None
    return f"已导入{DATASET_LABELS[DatasetKind(row.kind)]} {row.rows} 行（{row.period}）"


@router.get("/quality")
def dashboard(request: Request, db: DbSession, viewer: QualityViewer,
              hospital: str | None = None, period: PeriodQ = None,
              flash: str = "", import_id: str = "") -> Response:
    h, p = _scope(db, viewer, hospital, period)
    t = quality_service.thresholds()
    rat = analyses.ratios(db, h, p)
    use = analyses.rational(db, h, p)
    ten, _marks = analyses.double_ten(db, h, p)
    values = rat.total | rat.shares | use.indicators
    cards = []
    for key, name, source, target, direction in report.indicator_rows(t):
        value = values.get(key)
        cards.append({"key": key, "name": name, "source": source, "target": target,
                      "value": value,
                      "money": key in ("consumables_per_100", "antibacterial_intensity"),
                      "bad": (target is not None and value is not None and direction == "max"
                              and value > target)})
    charts = {
        "trend": {"months": [m["month"] for m in rat.trend],
                  "drug": [_pct(m["drug_cost_ratio"]) for m in rat.trend],
                  "consumables": [_pct(m["consumables_ratio"]) for m in rat.trend],
                  "service": [_pct(m["service_income_share"]) for m in rat.trend]},
        "departments": {"names": [d["name"] for d in rat.departments[:15]],
                        "drug": [_pct(d["indicators"]["drug_cost_ratio"])
                                 for d in rat.departments[:15]]},
        "top": {"names": [d.generic_name for d in ten.by_amount][::-1],
                "amounts": [round(d.amount, 2) for d in ten.by_amount][::-1]},
        "target": _pct(t.drug_cost_ratio),
    }
    region = (analyses.regional_summary(db, viewer.hospitals, p) if viewer.regional else [])
    return render_page(request, "quality_dashboard.html", _base(
        viewer, h, p, cards=cards, charts=charts, ratios=rat, rational=use, region=region,
        imports=quality_service.list_imports(db, h)[:8],
        flash=_import_flash(db, h, flash, import_id),
        kinds=DATASET_LABELS, may_import=viewer.may_import(h)))


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


@router.get("/quality/double-ten")
def double_ten_page(request: Request, db: DbSession, viewer: QualityViewer,
                    hospital: str | None = None, period: PeriodQ = None,
                    department: str | None = None, prescriber: str | None = None,
                    flash: str = "") -> Response:
    h, p = _scope(db, viewer, hospital, period)
    ten, marks = analyses.double_ten(db, h, p, department=department, prescriber=prescriber)
    return render_page(request, "quality_double_ten.html", _base(
        viewer, h, p, ten=ten, marks=marks, department=department, prescriber=prescriber,
        irrational=quality_service.irrational_prescribers(db, h, p.months()),
        may_review=viewer.may_review(h), reasons=COMMON_REASONS,
        flash=_REVIEW_FLASHES.get(flash)))


@router.get("/quality/rational")
def rational_page(request: Request, db: DbSession, viewer: QualityViewer,
                  hospital: str | None = None, period: PeriodQ = None,
                  check: Check | None = None,
                  offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Response:
    h, p = _scope(db, viewer, hospital, period)
    use = analyses.rational(db, h, p)
    listed: list[dict[str, Any]] = []
    total = 0
    if check is not None:
        listed, total = analyses.findings(db, h, p, check, offset=offset)
    t = quality_service.thresholds()
    rows = [r for r in report.indicator_rows(t) if r[0] in use.indicators]
    return render_page(request, "quality_rational.html", _base(
        viewer, h, p, use=use, rows=rows, check=check, listed=listed, total=total,
        offset=offset))


@router.get("/quality/prescriptions/{prescription_id}")
def prescription_page(prescription_id: str, request: Request, db: DbSession,
                      viewer: QualityViewer, hospital: str | None = None,
                      period: PeriodQ = None, flash: str = "") -> Response:
    h, p = _scope(db, viewer, hospital, period)
    lines = analyses.prescription(db, h, prescription_id, p)
    mark = db.scalar(select(Review).where(Review.hospital_id == h.id,
                                          Review.target == "prescription",
                                          Review.prescription_id == prescription_id))
    return render_page(request, "quality_prescription.html", _base(
        viewer, h, p, rx_id=prescription_id, lines=lines, head=lines[0], mark=mark,
        may_review=viewer.may_review(h), reasons=COMMON_REASONS,
        flash=_REVIEW_FLASHES.get(flash)))


@router.post("/quality/reviews")
def review(db: DbSession, viewer: QualityViewer, hospital: Annotated[str, Form()],
           period: Annotated[str, Form(max_length=8)], verdict: Annotated[Verdict, Form()],
           reason: Annotated[str, Form(max_length=500)] = "",
           drug_code: Annotated[str, Form(max_length=64)] = "",
           prescription_id: Annotated[str, Form(max_length=64)] = "",
           back: Annotated[str, Form()] = "double-ten") -> Response:
    h = quality_service.access_hospital(db, viewer, hospital)
    quality_service.require_reviewer(viewer, h)
    p = quality_service.period_of(period)
    extra: dict[str, str] = {}
    if drug_code:
        analyses.require_drug(db, h, drug_code, p)
    if prescription_id:
        head = analyses.prescription(db, h, prescription_id, p)[0]
        extra = {"prescriber_code": head["prescriber_code"],
                 "prescriber_name": head["prescriber_name"] or "",
                 "department_name": head["department_name"] or ""}
    quality_service.mark(db, hospital=h, period=p.label, verdict=verdict, reason=reason,
                         drug_code=drug_code, prescription_id=prescription_id,
                         reviewer=viewer.principal.label or "药师", **extra)
    q = {"hospital": h.code, "period": p.label, "flash": "reviewed"}
    if prescription_id:
        return RedirectResponse(f"/quality/prescriptions/{prescription_id}?{urlencode(q)}",
                                status_code=303)
    return RedirectResponse(f"/quality/double-ten?{urlencode(q)}", status_code=303)


@router.post("/quality/imports")
async def import_page(request: Request, db: DbSession, viewer: QualityViewer,
                      hospital: Annotated[str, Form()], kind: Annotated[DatasetKind, Form()],
                      period: Annotated[str, Form(max_length=8)],
                      file: Annotated[UploadFile, File()],
                      mapping: Annotated[str, Form(max_length=4000)] = "") -> Response:
    h = quality_service.access_hospital(db, viewer, hospital)
    if not viewer.may_import(h):
        raise PermissionDenied("无权为该医院导入数据")
    try:
        row = await import_upload(db, h, kind, period, file, mapping, viewer)
    except OnetripError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        return render_page(request, "quality_import_error.html", {
            "error": exc, "errors": detail.get("errors", []),
            "missing": detail.get("missing", []), "hospital": h,
            "back": f"/quality?{urlencode({'hospital': h.code})}"},
            status_code=exc.http_status)
    q = {"hospital": h.code, "period": row.period, "flash": "imported", "import_id": row.id}
    return RedirectResponse(f"/quality?{urlencode(q)}", status_code=303)


@router.get("/quality/report.xlsx")
def report_page(db: DbSession, viewer: QualityViewer, hospital: str | None = None,
                period: PeriodQ = None) -> Response:
    h, p = _scope(db, viewer, hospital, period)
    return Response(report.workbook_bytes(db, h, p), media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="quality-{h.code}-{p.label}.xlsx"'})
