"""The analyses, in DuckDB SQL over the imported Parquet files.

``open_engine`` gives a connection with two views, ``rx`` (prescription lines) and
``charges`` (charges per visit and category), over exactly the files the caller names (the
service takes them from the current import records). Each analysis is one or two scans;
Python only reshapes the few rows that come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from onetrip.quality.importing import connect
from onetrip.quality.rules import (
    DRUG_CATEGORIES,
    FIELDS,
    GRADE_ORDER,
    INJECTION_ROUTES,
    TEST_CATEGORIES,
    Check,
    DatasetKind,
    Period,
    Thresholds,
    ratio,
)

_DUCK_TYPES = {"text": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE",
               "number": "DOUBLE", "int": "INTEGER", "bool": "BOOLEAN", "enum": "VARCHAR"}


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def open_engine(rx_files: Sequence[Path], charge_files: Sequence[Path],
                threads: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose ``rx`` and ``charges`` views read these files."""
    con = connect(threads)
    for name, kind, files in (("rx", DatasetKind.prescriptions, rx_files),
                              ("charges", DatasetKind.charges, charge_files)):
        if files:
            paths = _sql_list([str(f) for f in files])
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({paths})")
        else:
            cols = ", ".join(f"{s.name} {_DUCK_TYPES[s.type]}" for s in FIELDS[kind])
            con.execute(f"CREATE TABLE {name} ({cols})")
    return con


def _exec(con: duckdb.DuckDBPyConnection, sql: str,
          params: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Execute with only the parameters the statement names (DuckDB refuses extras)."""
    used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
    return con.execute(sql, used)


def _rows(con: duckdb.DuckDBPyConnection, sql: str,
          params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = _exec(con, sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _scope(department: str | None, prescriber: str | None) -> tuple[str, dict[str, Any]]:
    sql, params = "", {}
    if department:
        sql += " AND department_code = $department"
        params["department"] = department
    if prescriber:
        sql += " AND prescriber_code = $prescriber"
        params["prescriber"] = prescriber
    return sql, params


# --- double ten (QA-1) ----------------------------------------------------------------------


@dataclass
class RankedDrug:
    rank: int
    drug_code: str
    generic_name: str
    specification: str
    unit: str
    amount: float
    quantity: float
    lines: int
    prev_amount: float | None
    prev_quantity: float | None
    prev_rank: int | None
    change: float | None
    contributors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DoubleTen:
    by_amount: list[RankedDrug]
    by_quantity: list[RankedDrug]
    total_amount: float


def double_ten(con: duckdb.DuckDBPyConnection, period: Period, *,
               department: str | None = None, prescriber: str | None = None,
               size: int = 10, contributors: int = 3) -> DoubleTen:
    """Top ``size`` drugs by amount and by quantity, with last period's figures and rank
    and the prescribers contributing most to each."""
    prev = period.previous()
    scope, params = _scope(department, prescriber)
    params |= {"prev": prev.start, "cur": period.start, "end": period.end}
    agg = _rows(con, f"""
        WITH a AS (
            SELECT drug_code, any_value(generic_name) AS generic_name,
                   any_value(specification) AS specification, any_value(unit) AS unit,
                   sum(amount) FILTER (WHERE prescribed_at >= $cur) AS amount,
                   sum(quantity) FILTER (WHERE prescribed_at >= $cur) AS quantity,
                   count(*) FILTER (WHERE prescribed_at >= $cur) AS lines,
                   sum(amount) FILTER (WHERE prescribed_at < $cur) AS prev_amount,
                   sum(quantity) FILTER (WHERE prescribed_at < $cur) AS prev_quantity
            FROM rx WHERE prescribed_at >= $prev AND prescribed_at < $end {scope}
            GROUP BY drug_code),
        r AS (
            SELECT *,
              CASE WHEN amount > 0 THEN row_number() OVER (
                ORDER BY amount DESC NULLS LAST, drug_code) END AS rank_amount,
              CASE WHEN quantity > 0 THEN row_number() OVER (
                ORDER BY quantity DESC NULLS LAST, drug_code) END AS rank_quantity,
              CASE WHEN prev_amount > 0 THEN row_number() OVER (
                ORDER BY prev_amount DESC NULLS LAST, drug_code) END AS prev_rank_amount,
              CASE WHEN prev_quantity > 0 THEN row_number() OVER (
                ORDER BY prev_quantity DESC NULLS LAST, drug_code) END AS prev_rank_quantity,
              sum(amount) OVER () AS total_amount
            FROM a)
        SELECT * FROM r WHERE rank_amount <= {int(size)} OR rank_quantity <= {int(size)}
    """, params)
    total = float(agg[0]["total_amount"] or 0) if agg else 0.0
    codes = [r["drug_code"] for r in agg]
    by_prescriber: dict[str, list[dict[str, Any]]] = {}
    if codes:
        rows = _rows(con, f"""
            SELECT drug_code, prescriber_code, any_value(prescriber_name) AS prescriber_name,
                   any_value(department_name) AS department_name,
                   sum(amount) AS amount, sum(quantity) AS quantity
            FROM rx WHERE prescribed_at >= $cur AND prescribed_at < $end {scope}
              AND drug_code IN (SELECT unnest({_sql_list(codes)}))
            GROUP BY drug_code, prescriber_code""", params)
        for row in rows:
            by_prescriber.setdefault(row["drug_code"], []).append(row)

    def ranked(metric: str) -> list[RankedDrug]:
        out = []
        for r in sorted((r for r in agg if r[f"rank_{metric}"] and
                         r[f"rank_{metric}"] <= size), key=lambda r: r[f"rank_{metric}"]):
            people = sorted(by_prescriber.get(r["drug_code"], []),
                            key=lambda p: (-p[metric], p["prescriber_code"]))[:contributors]
            prev_value = r[f"prev_{metric}"]
            out.append(RankedDrug(
                rank=r[f"rank_{metric}"], drug_code=r["drug_code"],
                generic_name=r["generic_name"], specification=r["specification"] or "",
                unit=r["unit"] or "", amount=float(r["amount"]),
                quantity=float(r["quantity"]), lines=int(r["lines"]),
                prev_amount=r["prev_amount"], prev_quantity=r["prev_quantity"],
                prev_rank=r[f"prev_rank_{metric}"],
                change=(r[metric] - prev_value) / prev_value if prev_value else None,
                contributors=[{k: p[k] for k in ("prescriber_code", "prescriber_name",
                                                 "department_name", "amount", "quantity")}
                              for p in people]))
        return out

    return DoubleTen(by_amount=ranked("amount"), by_quantity=ranked("quantity"),
                     total_amount=total)


# --- ratios (QA-2) ---------------------------------------------------------------------------


@dataclass
class Income:
    """Income of one department (or the hospital) in one month, by category."""

    medical: float = 0.0
    drugs: float = 0.0
    herbal: float = 0.0
    consumables: float = 0.0
    tests: float = 0.0

    def add(self, other: Income) -> None:
        self.medical += other.medical
        self.drugs += other.drugs
        self.herbal += other.herbal
        self.consumables += other.consumables
        self.tests += other.tests

    def indicators(self, exclude_herbal: bool) -> dict[str, float | None]:
        drugs = self.drugs - self.herbal if exclude_herbal else self.drugs
        return {
            "drug_cost_ratio": ratio(drugs, self.medical),
            "consumables_per_100": (None if self.medical - self.drugs <= 0 else
                                    100 * self.consumables / (self.medical - self.drugs)),
            "consumables_ratio": ratio(self.consumables, self.medical),
            "service_income_share": ratio(
                self.medical - self.drugs - self.consumables - self.tests, self.medical),
        }


def income(con: duckdb.DuckDBPyConnection, start: date, end: date
           ) -> list[tuple[str, str, str, Income]]:
    """(month, department code, department name, income) for every month and department."""
    drugs, tests = _sql_list(DRUG_CATEGORIES), _sql_list(TEST_CATEGORIES)
    rows = con.execute(f"""
        SELECT strftime(charged_on, '%Y-%m') AS month, department_code,
               any_value(department_name), sum(amount),
               coalesce(sum(amount) FILTER (WHERE list_contains({drugs}, category)), 0),
               coalesce(sum(amount) FILTER (WHERE category = 'drug_herbal'), 0),
               coalesce(sum(amount) FILTER (WHERE category = 'consumable'), 0),
               coalesce(sum(amount) FILTER (WHERE list_contains({tests}, category)), 0)
        FROM charges WHERE charged_on >= $start AND charged_on < $end
        GROUP BY ALL ORDER BY 1, 2""", {"start": start, "end": end}).fetchall()
    return [(m, code, name, Income(float(a), float(b), float(c), float(d), float(e)))
            for m, code, name, a, b, c, d, e in rows]


@dataclass
class DrugShares:
    vbp_quantity: float
    vbp_generic_quantity: float
    vbp_amount: float
    vbp_generic_amount: float
    key_amount: float
    drug_amount: float
    outpatient_visits: int
    essential_visits: int
    prescriptions: int

    def indicators(self) -> dict[str, float | None]:
        return {
            "vbp_volume_share": ratio(self.vbp_quantity, self.vbp_generic_quantity),
            "vbp_amount_share": ratio(self.vbp_amount, self.vbp_generic_amount),
            "key_drug_share": ratio(self.key_amount, self.drug_amount),
            "essential_visit_share": ratio(self.essential_visits, self.outpatient_visits),
        }


def drug_shares(con: duckdb.DuckDBPyConnection, start: date, end: date,
                key_drugs: Sequence[str], department: str | None = None) -> DrugShares:
    """集采 share among drugs of the same generic names (#21, secondary #8), key-monitored
    drug share (#32), outpatient essential-drug visits (#18) and the prescription count."""
    scope, params = _scope(department, None)
    row = _exec(con, f"""
        WITH l AS (SELECT * FROM rx WHERE prescribed_at >= $start AND prescribed_at < $end
                   {scope}),
        vbp AS (SELECT DISTINCT generic_name FROM l WHERE is_vbp),
        names AS (SELECT DISTINCT generic_name FROM l),
        keyed AS (SELECT DISTINCT generic_name FROM names, unnest({_sql_list(key_drugs)})
                  AS k(name) WHERE contains(generic_name, k.name))
        SELECT coalesce(sum(quantity) FILTER (WHERE is_vbp), 0),
               coalesce(sum(quantity) FILTER (WHERE generic_name IN (FROM vbp)), 0),
               coalesce(sum(amount) FILTER (WHERE is_vbp), 0),
               coalesce(sum(amount) FILTER (WHERE generic_name IN (FROM vbp)), 0),
               coalesce(sum(amount) FILTER (WHERE generic_name IN (FROM keyed)), 0),
               coalesce(sum(amount), 0),
               count(DISTINCT visit_id) FILTER (WHERE visit_type = 'outpatient'),
               count(DISTINCT visit_id) FILTER (WHERE visit_type = 'outpatient'
                                                AND is_essential),
               count(DISTINCT prescription_id)
        FROM l""", params | {"start": start, "end": end}).fetchone()
    assert row is not None
    a, b, c, d, e, f = (float(v) for v in row[:6])
    return DrugShares(a, b, c, d, e, f, int(row[6]), int(row[7]), int(row[8]))


# --- rational use (QA-3) ---------------------------------------------------------------------


@dataclass
class Rational:
    indicators: dict[str, float | None]
    counts: dict[str, int]
    findings: dict[Check, list[dict[str, Any]]]
    finding_counts: dict[Check, int]
    prescribers: list[dict[str, Any]]
    lines_without_ddd: int


def _per_prescription(scope: str) -> str:
    special = GRADE_ORDER["special"]
    return f"""
        SELECT prescription_id, any_value(visit_type) AS visit_type,
               any_value(prescription_kind) AS kind, any_value(prescriber_code) AS pc,
               any_value(prescriber_name) AS prescriber_name,
               any_value(department_name) AS department_name,
               any_value(visit_id) AS visit_id, any_value(patient_id) AS patient_id,
               min(prescribed_at) AS prescribed_at, bool_or(is_long_term) AS long_term,
               max(supply_reason) AS reason, count(*) AS drugs,
               coalesce(max(days_supply), 0) AS days,
               count(*) FILTER (WHERE antibacterial_grade <> 'none') AS abx,
               max(CASE antibacterial_grade WHEN 'special' THEN {special}
                   WHEN 'restricted' THEN 2 WHEN 'unrestricted' THEN 1 ELSE 0 END) AS grade,
               bool_or(is_controlled) AS controlled,
               bool_or(list_contains({_sql_list(INJECTION_ROUTES)}, route)) AS injection,
               sum(amount) AS amount
        FROM rx WHERE prescribed_at >= $start AND prescribed_at < $end {scope}
        GROUP BY prescription_id"""


def _check_conditions(t: Thresholds) -> dict[Check, str]:
    return {
        Check.big_prescription:
            f"kind = 'western' AND drugs > {int(t.max_drugs_per_prescription)}",
        Check.over_supply:
            "NOT long_term AND coalesce(reason, '') = '' AND "
            f"((visit_type = 'outpatient' AND days > {int(t.max_days_supply)}) OR "
            f"(visit_type = 'emergency' AND days > {int(t.max_days_supply_emergency)}))",
        Check.long_term_over: f"long_term AND days > {int(t.max_days_long_term)}",
        Check.long_term_forbidden: "long_term AND (abx > 0 OR controlled)",
        Check.multiple_antibacterials: "abx >= 2",
        Check.special_in_outpatient:
            f"visit_type IN ('outpatient', 'emergency') AND grade = {GRADE_ORDER['special']}",
        Check.no_privilege: "grade >= 2 AND grade > coalesce(privilege, 1)",
    }


def rational(con: duckdb.DuckDBPyConnection, start: date, end: date, thresholds: Thresholds,
             *, privileges: Sequence[tuple[str, str]] = (),
             ddd: Sequence[tuple[str, float, float]] = (), department: str | None = None,
             limit: int = 50) -> Rational:
    """Antibacterial indicators, injection rate and the prescription-rule checks; each
    finding carries its prescription id."""
    scope, params = _scope(department, None)
    params |= {"start": start, "end": end}
    con.execute("CREATE OR REPLACE TEMP TABLE privileges (code VARCHAR, grade INTEGER)")
    if privileges:
        con.executemany("INSERT INTO privileges VALUES (?, ?)",
                        [(c, GRADE_ORDER[g]) for c, g in privileges])
    _exec(con, f"""CREATE OR REPLACE TEMP TABLE p AS
        SELECT q.*, v.grade AS privilege FROM ({_per_prescription(scope)}) q
        LEFT JOIN privileges v ON v.code = q.pc""", params)
    conditions = _check_conditions(thresholds)
    flags = ", ".join(f"count(*) FILTER (WHERE {c}) AS {k.value}"
                      for k, c in conditions.items())
    row = _rows(con, f"""
        SELECT count(*) FILTER (WHERE visit_type = 'outpatient') AS outpatient,
               count(*) FILTER (WHERE visit_type = 'outpatient' AND abx > 0) AS outpatient_abx,
               count(*) FILTER (WHERE visit_type = 'emergency') AS emergency,
               count(*) FILTER (WHERE visit_type = 'emergency' AND abx > 0) AS emergency_abx,
               count(*) FILTER (WHERE visit_type = 'outpatient' AND injection)
                   AS outpatient_injection,
               count(DISTINCT visit_id) FILTER (WHERE visit_type = 'inpatient' AND abx > 0)
                   AS inpatient_abx_visits,
               {flags}
        FROM p""")[0]
    counts = {k: int(v) for k, v in row.items()}
    inpatients, patient_days, ddds, missing = _inpatient(con, params, scope, ddd)
    counts |= {"inpatient_visits": inpatients}
    indicators = {
        "outpatient_antibacterial_rate": ratio(counts["outpatient_abx"], counts["outpatient"]),
        "emergency_antibacterial_rate": ratio(counts["emergency_abx"], counts["emergency"]),
        "inpatient_antibacterial_rate": ratio(counts["inpatient_abx_visits"], inpatients),
        "antibacterial_intensity": (100 * ddds / patient_days) if patient_days else None,
        "outpatient_injection_rate": ratio(counts["outpatient_injection"],
                                           counts["outpatient"]),
        "patient_days": patient_days,
        "ddds": ddds,
    }
    findings: dict[Check, list[dict[str, Any]]] = {}
    for check, cond in conditions.items():
        findings[check] = _rows(con, f"""
            SELECT prescription_id, prescribed_at, visit_type, pc AS prescriber_code,
                   prescriber_name, department_name, drugs, days, abx, grade, amount
            FROM p WHERE {cond} ORDER BY prescribed_at, prescription_id LIMIT {int(limit)}""")
    any_finding = " OR ".join(f"({c})" for c in conditions.values())
    prescribers = _rows(con, f"""
        SELECT pc AS prescriber_code, any_value(prescriber_name) AS prescriber_name,
               any_value(department_name) AS department_name, count(*) AS findings
        FROM p WHERE {any_finding} GROUP BY pc ORDER BY findings DESC, pc LIMIT 20""")
    return Rational(indicators=indicators, counts=counts, findings=findings,
                    finding_counts={k: counts[k.value] for k in conditions},
                    prescribers=prescribers, lines_without_ddd=missing)


def _inpatient(con: duckdb.DuckDBPyConnection, params: dict[str, Any], scope: str,
               ddd: Sequence[tuple[str, float, float]]) -> tuple[int, float, float, int]:
    """(inpatient visits, patient-days, antibacterial DDDs, antibacterial lines without a
    DDD value). Visits and patient-days come from the charges (bed charges count days)."""
    dept = " AND department_code = $department" if "department" in params else ""
    row = _exec(con, f"""
        SELECT count(DISTINCT visit_id),
               coalesce(sum(quantity) FILTER (WHERE category = 'bed'), 0)
        FROM charges WHERE visit_type = 'inpatient' AND charged_on >= $start
          AND charged_on < $end {dept}""", params).fetchone()
    visits, days = (int(row[0]), float(row[1])) if row else (0, 0.0)
    con.execute("CREATE OR REPLACE TEMP TABLE ddd (code VARCHAR, ddd_g DOUBLE, unit_g DOUBLE)")
    if ddd:
        con.executemany("INSERT INTO ddd VALUES (?, ?, ?)", list(ddd))
    got = _exec(con, f"""
        SELECT coalesce(sum(quantity * d.unit_g / d.ddd_g), 0),
               count(*) FILTER (WHERE d.code IS NULL)
        FROM rx LEFT JOIN ddd d ON d.code = rx.drug_code
        WHERE visit_type = 'inpatient' AND antibacterial_grade <> 'none'
          AND prescribed_at >= $start AND prescribed_at < $end {scope}""", params).fetchone()
    ddds, missing = (float(got[0]), int(got[1])) if got else (0.0, 0)
    return visits, days, ddds, missing


def prescriptions_for(con: duckdb.DuckDBPyConnection, start: date, end: date,
                      thresholds: Thresholds, check: Check, *, limit: int = 500,
                      offset: int = 0) -> list[dict[str, Any]]:
    """Every prescription (paged) that a check found, after ``rational`` filled ``p``."""
    cond = _check_conditions(thresholds)[check]
    return _rows(con, f"""
        SELECT prescription_id, prescribed_at, visit_type, pc AS prescriber_code,
               prescriber_name, department_name, drugs, days, abx, grade, amount
        FROM p WHERE {cond} ORDER BY prescribed_at, prescription_id
        LIMIT {int(limit)} OFFSET {int(offset)}""")


def prescription_lines(con: duckdb.DuckDBPyConnection,
                       prescription_id: str) -> list[dict[str, Any]]:
    """The lines of one prescription, in file order of drug code."""
    return _rows(con, "SELECT * FROM rx WHERE prescription_id = $id ORDER BY drug_code",
                 {"id": prescription_id})
