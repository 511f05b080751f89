"""Quality use cases: imports, catalogues, reviews, and who may see what.

Session first, keyword-only, never commits (the edge does). The analyses themselves are in
``analyses.py``; this module keeps the database side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.errors import InvalidInput, NotFound, PermissionDenied
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Hospital
from onetrip.quality import importing, summaries
from onetrip.quality.models import (
    DataImport,
    DrugDDD,
    KeyMonitoredDrug,
    PrescriberPrivilege,
    Review,
)
from onetrip.quality.rules import (
    GRADE_ORDER,
    DatasetKind,
    Period,
    PeriodKind,
    Thresholds,
    Verdict,
    is_column_mapping,
    parse_period,
)

#: Roles that see one hospital's analytics in full (pseudonymous patient ids included).
HOSPITAL_ROLES = (Role.pharmacist, Role.hospital_admin)
#: Roles that see every hospital; the regulator never sees patient ids.
REGION_ROLES = (Role.regional_admin, Role.regulator)
VIEW_ROLES = (*HOSPITAL_ROLES, *REGION_ROLES)
IMPORT_ROLES = (Role.pharmacist, Role.hospital_admin, Role.regional_admin)


class InvalidPeriod(InvalidInput):
    code = "quality_invalid_period"
    message = "期间格式应为 2026-10（月）、2026-Q4（季度）或 2026-W43（周）"


class ImportNeedsMonth(InvalidInput):
    code = "quality_import_needs_month"
    message = "导入以自然月为单位，期间应为 2026-10 这样的月份"


class NoSuchPrescription(NotFound):
    code = "quality_prescription_not_found"
    message = "未找到该处方"


class NoSuchDrug(NotFound):
    code = "quality_drug_not_found"
    message = "本期数据中没有该药品"


class ReviewReasonRequired(InvalidInput):
    code = "quality_reason_required"
    message = "判定为不合理时必须填写理由"


class InvalidMapping(InvalidInput):
    code = "quality_invalid_mapping"
    message = '列映射应为 JSON 对象，键和值都是文字，例如 {"prescription_id": "处方编号"}'


class UnknownThreshold(InvalidInput):
    code = "quality_unknown_threshold"
    message = "阈值配置中有未知项"


def period_of(text: str) -> Period:
    """Parse a period label; raises InvalidPeriod."""
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidPeriod(detail={"period": text}) from exc


def parse_mapping(text: str) -> dict[str, str] | None:
    """The column mapping a form sends (JSON {field: header}; blank for none); raises
    InvalidMapping."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # "[[[[…" nests past the recursion limit
        raise InvalidMapping() from exc
    if not is_column_mapping(value):
        raise InvalidMapping()
    return value


def thresholds() -> Thresholds:
    """The defaults overridden by ``ONETRIP_QUALITY_THRESHOLDS``."""
    try:
        return Thresholds.with_overrides(get_settings().quality_thresholds)
    except (ValueError, TypeError) as exc:
        raise UnknownThreshold(detail={"error": str(exc)}) from exc


def analytics_dir() -> Path:
    return get_settings().analytics_dir.resolve()


# --- access ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """What a principal may see of quality analytics."""

    principal: Principal
    hospitals: list[Hospital]

    @property
    def sees_patients(self) -> bool:
        return self.principal.role is not Role.regulator

    @property
    def regional(self) -> bool:
        return self.principal.role in REGION_ROLES

    def may_review(self, hospital: Hospital) -> bool:
        return (self.principal.role is Role.pharmacist
                and self.principal.hospital_id == hospital.id)

    def may_import(self, hospital: Hospital) -> bool:
        if self.principal.role is Role.regional_admin:
            return True
        return (self.principal.role in (Role.pharmacist, Role.hospital_admin)
                and self.principal.hospital_id == hospital.id)


def viewer_for(db: Session, principal: Principal) -> Viewer:
    """The hospitals a principal may analyse; raises PermissionDenied for other roles."""
    if principal.role in REGION_ROLES:
        hospitals = [h for h in org_service.list_hospitals(db) if h.level != "primary"] + [
            h for h in org_service.list_hospitals(db) if h.level == "primary"]
        return Viewer(principal, hospitals)
    if principal.role in HOSPITAL_ROLES and principal.hospital_id is not None:
        hospital = db.get(Hospital, principal.hospital_id)
        if hospital is not None:
            return Viewer(principal, [hospital])
    raise PermissionDenied("只有药师、医院管理员、区域管理员和卫健委可以查看处方与费用分析")


def access_hospital(db: Session, viewer: Viewer, code: str | None) -> Hospital:
    """The hospital ``code`` if the viewer may see it (their own one when None)."""
    if code is None:
        return viewer.hospitals[0]
    hospital = org_service.access_hospital(db, code)
    if hospital.id not in {h.id for h in viewer.hospitals}:
        raise PermissionDenied("无权查看其他医院的处方与费用数据")
    return hospital


# --- imports -----------------------------------------------------------------------------


def import_file(db: Session, *, hospital: Hospital, kind: DatasetKind, period: str,
                source: Path, mapping: dict[str, str] | None = None, source_name: str = "",
                imported_by: str = "", progress: importing.Progress | None = None
                ) -> DataImport:
    """Validate and store one month of one dataset for a hospital, replacing an earlier
    import of that month; raises ImportRejected (with row numbers) and stores nothing."""
    month = period_of(period)
    if month.kind is not PeriodKind.month:
        raise ImportNeedsMonth(detail={"period": period})
    if mapping is not None and not is_column_mapping(mapping):
        raise InvalidMapping()
    written = importing.write_dataset(
        source, kind=kind, hospital_code=hospital.code, period=month,
        analytics_dir=analytics_dir(), mapping=mapping, progress=progress,
        threads=get_settings().analytics_threads)
    row = db.scalar(select(DataImport).where(DataImport.hospital_id == hospital.id,
                                             DataImport.kind == kind.value,
                                             DataImport.period == month.label))
    if row is None:
        row = DataImport(hospital_id=hospital.id, kind=kind.value, period=month.label,
                         version=0)
        db.add(row)
    row.file = written.file
    row.rows = written.rows
    row.source_name = source_name or source.name
    row.mapping = dict(mapping or {})
    row.imported_by = imported_by
    row.imported_at = utcnow()
    row.version = (row.version or 0) + 1
    db.flush()
    return row


def list_imports(db: Session, hospital: Hospital) -> list[DataImport]:
    return list(db.scalars(select(DataImport).where(DataImport.hospital_id == hospital.id)
                           .order_by(DataImport.period.desc(), DataImport.kind)))


def current_files(db: Session, hospital_ids: Iterable[int], kind: DatasetKind,
                  months: Iterable[str]) -> list[Path]:
    """The current Parquet files of these hospitals and months."""
    base = analytics_dir()
    rows = db.scalars(select(DataImport.file).where(
        DataImport.hospital_id.in_(list(hospital_ids)), DataImport.kind == kind.value,
        DataImport.period.in_(list(months))).order_by(DataImport.file))
    return [base / f for f in rows]


def collect_garbage(db: Session, *, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete Parquet files that no import record names (replaced months, failed
    transactions); only files older than ``older_than`` so running imports are safe."""
    base = analytics_dir()
    keep = {base / f for f in db.scalars(select(DataImport.file))}
    keep |= {s for f in list(keep) for s in summaries.paths_of(f)}
    cutoff = datetime.now(UTC) - older_than
    removed = 0
    for path in [*base.glob("*/*/*/*.parquet"), *base.glob("*/*/*/*.parquet.tmp")]:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if path not in keep and mtime < cutoff:
            path.unlink()
            removed += 1
    return removed


# --- catalogues ----------------------------------------------------------------------------


def key_drug_names(db: Session) -> list[str]:
    return list(db.scalars(select(KeyMonitoredDrug.generic_name)
                           .where(KeyMonitoredDrug.active).order_by(KeyMonitoredDrug.id)))


def list_key_drugs(db: Session) -> list[KeyMonitoredDrug]:
    return list(db.scalars(select(KeyMonitoredDrug).order_by(KeyMonitoredDrug.id)))


def set_key_drug(db: Session, *, generic_name: str, catalogue: str = "",
                 active: bool = True) -> KeyMonitoredDrug:
    """Add a drug to the key-monitored catalogue, or change its entry."""
    name = generic_name.strip()
    if not name:
        raise InvalidInput("药品通用名不能为空")
    row = db.scalar(select(KeyMonitoredDrug).where(KeyMonitoredDrug.generic_name == name))
    if row is None:
        row = KeyMonitoredDrug(generic_name=name)
        db.add(row)
    row.catalogue, row.active = catalogue, active
    db.flush()
    return row


def set_ddd(db: Session, *, hospital: Hospital, drug_code: str, ddd_g: float, unit_g: float,
            generic_name: str = "") -> DrugDDD:
    """Set the DDD of one antibacterial product of a hospital."""
    if ddd_g <= 0 or unit_g <= 0:
        raise InvalidInput("DDD值和每单位含量必须大于0")
    row = db.scalar(select(DrugDDD).where(DrugDDD.hospital_id == hospital.id,
                                          DrugDDD.drug_code == drug_code))
    if row is None:
        row = DrugDDD(hospital_id=hospital.id, drug_code=drug_code)
        db.add(row)
    row.ddd_g, row.unit_g, row.generic_name = ddd_g, unit_g, generic_name or row.generic_name
    db.flush()
    return row


def list_ddd(db: Session, hospital_ids: Iterable[int]) -> list[DrugDDD]:
    return list(db.scalars(select(DrugDDD).where(DrugDDD.hospital_id.in_(list(hospital_ids)))
                           .order_by(DrugDDD.hospital_id, DrugDDD.drug_code)))


def set_privilege(db: Session, *, hospital: Hospital, prescriber_code: str, max_grade: str,
                  prescriber_name: str = "") -> PrescriberPrivilege:
    """Grant a prescriber antibacterial prescribing up to ``max_grade``."""
    if max_grade not in GRADE_ORDER or max_grade == "none":
        raise InvalidInput("处方权级别应为 unrestricted、restricted 或 special")
    row = db.scalar(select(PrescriberPrivilege).where(
        PrescriberPrivilege.hospital_id == hospital.id,
        PrescriberPrivilege.prescriber_code == prescriber_code))
    if row is None:
        row = PrescriberPrivilege(hospital_id=hospital.id, prescriber_code=prescriber_code)
        db.add(row)
    row.max_grade = max_grade
    row.prescriber_name = prescriber_name or row.prescriber_name
    db.flush()
    return row


def list_privileges(db: Session, hospital_ids: Iterable[int]) -> list[PrescriberPrivilege]:
    return list(db.scalars(select(PrescriberPrivilege).where(
        PrescriberPrivilege.hospital_id.in_(list(hospital_ids)))))


# --- reviews -------------------------------------------------------------------------------


def mark(db: Session, *, hospital: Hospital, period: str, verdict: Verdict, reason: str,
         reviewer: str, drug_code: str = "", prescription_id: str = "",
         generic_name: str = "", prescriber_code: str = "", prescriber_name: str = "",
         department_name: str = "") -> Review:
    """Record (or change) a pharmacist's verdict on a listed drug or a prescription."""
    if bool(drug_code) == bool(prescription_id):
        raise InvalidInput("请指定一个药品或一张处方")
    if verdict is Verdict.irrational and not reason.strip():
        raise ReviewReasonRequired()
    label = period_of(period).label
    target = "drug" if drug_code else "prescription"
    row = db.scalar(select(Review).where(
        Review.hospital_id == hospital.id, Review.target == target, Review.period == label,
        Review.drug_code == drug_code, Review.prescription_id == prescription_id))
    if row is None:
        row = Review(hospital_id=hospital.id, target=target, period=label,
                     drug_code=drug_code, prescription_id=prescription_id)
        db.add(row)
    row.verdict, row.reason, row.reviewer = verdict.value, reason.strip(), reviewer
    row.generic_name = generic_name or row.generic_name or ""
    row.prescriber_code = prescriber_code or row.prescriber_code or ""
    row.prescriber_name = prescriber_name or row.prescriber_name or ""
    row.department_name = department_name or row.department_name or ""
    row.reviewed_at = utcnow()
    db.flush()
    return row


def list_reviews(db: Session, hospital: Hospital, months: Iterable[str],
                 period_labels: Iterable[str] = ()) -> list[Review]:
    labels = [*months, *period_labels]
    return list(db.scalars(select(Review).where(Review.hospital_id == hospital.id,
                                                Review.period.in_(labels))
                           .order_by(Review.reviewed_at, Review.id)))


def reviewed_prescriptions(db: Session, hospital_ids: Iterable[int],
                           months: Iterable[str]) -> int:
    """How many distinct prescriptions pharmacists reviewed in these months (#16)."""
    return db.scalar(select(func.count(func.distinct(Review.prescription_id))).where(
        Review.hospital_id.in_(list(hospital_ids)), Review.target == "prescription",
        Review.period.in_(list(months)))) or 0


def irrational_prescribers(db: Session, hospital: Hospital,
                           months: Iterable[str]) -> list[dict[str, object]]:
    """Prescribers with prescriptions marked irrational, most first (for 约谈)."""
    rows = db.execute(
        select(Review.prescriber_code, func.max(Review.prescriber_name),
               func.max(Review.department_name), func.count(Review.id))
        .where(Review.hospital_id == hospital.id, Review.target == "prescription",
               Review.verdict == Verdict.irrational.value, Review.period.in_(list(months)))
        .group_by(Review.prescriber_code)
        .order_by(func.count(Review.id).desc(), Review.prescriber_code))
    out: list[dict[str, object]] = []
    for code, name, dept, count in rows:
        reasons = list(db.scalars(select(Review.reason).where(
            Review.hospital_id == hospital.id, Review.prescriber_code == code,
            Review.verdict == Verdict.irrational.value, Review.target == "prescription",
            Review.period.in_(list(months))).order_by(Review.id)))
        out.append({"prescriber_code": code, "prescriber_name": name,
                    "department_name": dept, "irrational": count, "reasons": reasons})
    return out


def require_reviewer(viewer: Viewer, hospital: Hospital) -> None:
    if not viewer.may_review(hospital):
        raise PermissionDenied("只有本院药师可以点评处方")
