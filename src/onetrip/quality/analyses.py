"""The three analyses for a hospital and period: the database names the files, DuckDB scans
them, and the review trail and catalogues come from the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.org.models import Hospital
from onetrip.quality import engine
from onetrip.quality import service as quality_service
from onetrip.quality.rules import Check, DatasetKind, Period, month_range, ratio


@contextmanager
def open_for(db: Session, hospitals: list[Hospital], months: list[str]
             ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection over the current files of these hospitals and months."""
    ids = [h.id for h in hospitals]
    con = engine.open_engine(
        quality_service.current_files(db, ids, DatasetKind.prescriptions, months),
        quality_service.current_files(db, ids, DatasetKind.charges, months),
        threads=get_settings().analytics_threads)
    try:
        yield con
    finally:
        con.close()


# --- double ten -------------------------------------------------------------------------------


def double_ten(db: Session, hospital: Hospital, period: Period, *,
               department: str | None = None, prescriber: str | None = None
               ) -> tuple[engine.DoubleTen, dict[str, Any]]:
    """QA-1: the two top-10 lists and the pharmacists' marks on the listed drugs."""
    t = quality_service.thresholds()
    months = sorted({*period.previous().months(), *period.months()})
    with open_for(db, [hospital], months) as con:
        result = engine.double_ten(con, period, department=department, prescriber=prescriber,
                                   size=t.double_ten_size, contributors=t.contributors)
    marks = {r.drug_code: r for r in quality_service.list_reviews(db, hospital, [],
                                                                  [period.label])
             if r.target == "drug"}
    return result, marks


# --- ratios -----------------------------------------------------------------------------------


@dataclass
class RatiosReport:
    period: Period
    total: dict[str, float | None]
    income: engine.Income
    departments: list[dict[str, Any]]
    trend: list[dict[str, Any]]
    shares: dict[str, float | None]
    counts: dict[str, int] = field(default_factory=dict)


def _trend_months(period: Period) -> list[str]:
    last = period.months()[-1]
    first_day = date(int(last[:4]) - 1, int(last[5:]), 1)
    return month_range(f"{first_day.year:04d}-{first_day.month:02d}", last)[1:]


def ratios(db: Session, hospital: Hospital, period: Period,
           department: str | None = None) -> RatiosReport:
    """QA-2: per-department ratios ranked, the 12-month trend and the drug shares."""
    exclude = quality_service.thresholds().exclude_herbal
    trend_months = _trend_months(period)
    months = sorted({*trend_months, *period.months()})
    start = min(period.start, date.fromisoformat(trend_months[0] + "-01"))
    with open_for(db, [hospital], months) as con:
        rows = engine.income(con, start, period.end)
        shares = engine.drug_shares(con, period.start, period.end,
                                    quality_service.key_drug_names(db), department)
    in_period = set(period.months())
    per_dept: dict[str, dict[str, Any]] = {}
    per_month: dict[str, engine.Income] = {m: engine.Income() for m in trend_months}
    total = engine.Income()
    for month, code, name, inc in rows:
        if month in per_month:
            per_month[month].add(inc)
        if month in in_period:
            total.add(inc)
            d = per_dept.setdefault(code, {"code": code, "name": name,
                                           "income": engine.Income()})
            d["income"].add(inc)
    departments = []
    for d in per_dept.values():
        d["indicators"] = d["income"].indicators(exclude)
        departments.append(d)
    departments.sort(key=lambda d: (-(d["indicators"]["drug_cost_ratio"] or 0), d["code"]))
    for i, d in enumerate(departments, 1):
        d["rank"] = i
    reviewed = quality_service.reviewed_prescriptions(db, [hospital.id], period.months())
    share_values = shares.indicators() | {"reviewed_share": ratio(reviewed,
                                                                  shares.prescriptions)}
    return RatiosReport(
        period=period, total=total.indicators(exclude), income=total,
        departments=departments,
        trend=[{"month": m, **inc.indicators(exclude), "medical": inc.medical}
               for m, inc in per_month.items()],
        shares=share_values,
        counts={"prescriptions": shares.prescriptions, "reviewed": reviewed,
                "outpatient_visits": shares.outpatient_visits,
                "essential_visits": shares.essential_visits})


# --- rational use -----------------------------------------------------------------------------


def rational(db: Session, hospital: Hospital, period: Period,
             department: str | None = None) -> engine.Rational:
    """QA-3: antibacterial indicators, injection rate and the prescription-rule checks."""
    with open_for(db, [hospital], period.months()) as con:
        return _rational(db, con, hospital, period, department)


def _rational(db: Session, con: duckdb.DuckDBPyConnection, hospital: Hospital,
              period: Period, department: str | None = None,
              limit: int = 50) -> engine.Rational:
    privileges = [(p.prescriber_code, p.max_grade)
                  for p in quality_service.list_privileges(db, [hospital.id])]
    ddd = [(d.drug_code, d.ddd_g, d.unit_g) for d in quality_service.list_ddd(db, [hospital.id])]
    return engine.rational(con, period.start, period.end, quality_service.thresholds(),
                           privileges=privileges, ddd=ddd, department=department, limit=limit)


def findings(db: Session, hospital: Hospital, period: Period, check: Check, *,
             offset: int = 0, limit: int = 200) -> tuple[list[dict[str, Any]], int]:
    """Every prescription one check found (a page of them) and how many there are."""
    with open_for(db, [hospital], period.months()) as con:
        result = _rational(db, con, hospital, period, limit=0)
        rows = engine.prescriptions_for(con, period.start, period.end,
                                        quality_service.thresholds(), check,
                                        limit=limit, offset=offset)
    return rows, result.finding_counts[check]


def prescription(db: Session, hospital: Hospital, prescription_id: str,
                 period: Period) -> list[dict[str, Any]]:
    """The lines of one prescription of this period; raises NoSuchPrescription."""
    with open_for(db, [hospital], period.months()) as con:
        lines = engine.prescription_lines(con, prescription_id)
    if not lines:
        raise quality_service.NoSuchPrescription(detail={"prescription": prescription_id})
    return lines


def require_drug(db: Session, hospital: Hospital, drug_code: str, period: Period) -> None:
    """Raises NoSuchDrug unless a line of this period prescribes ``drug_code`` (a verdict
    on a drug is of one the lists can show)."""
    with open_for(db, [hospital], period.months()) as con:
        found = engine.prescribes(con, drug_code)
    if not found:
        raise quality_service.NoSuchDrug(detail={"drug": drug_code})


# --- region -----------------------------------------------------------------------------------


def regional_summary(db: Session, hospitals: list[Hospital],
                     period: Period) -> list[dict[str, Any]]:
    """One row of headline indicators per hospital with data in the period."""
    exclude = quality_service.thresholds().exclude_herbal
    out = []
    for h in hospitals:
        with open_for(db, [h], period.months()) as con:
            inc = engine.Income()
            for _m, _c, _n, row in engine.income(con, period.start, period.end):
                inc.add(row)
            if not inc.medical:
                continue
            rat = _rational(db, con, h, period, limit=0)
        out.append({"hospital": h, **inc.indicators(exclude), "medical": inc.medical,
                    **{k: v for k, v in rat.indicators.items() if k.endswith(("rate",
                                                                             "intensity"))},
                    "findings": sum(rat.finding_counts.values())})
    return out
