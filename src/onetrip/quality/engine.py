"""The analyses, in DuckDB SQL over the imported Parquet files.

``open_engine`` gives a connection with two views, ``rx`` (prescription lines) and
``charges`` (charges per visit and category), over exactly the files the caller names (the
service takes them from the current import records). When every file has its summaries
(summaries.py), views over those are added too (``rx_drugs``, ``rx_prescribers``,
``rx_prescriptions``, ``rx_counts``, ``charges_income``, ``charges_counts``), and the
hospital-wide analyses of whole months read them instead of the lines; the SQL is the same
with the source swapped. Python only reshapes the few rows that come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from onetrip.quality import duck
from onetrip.quality.duck import open_engine as open_engine
from onetrip.quality.rules import (
    DRUG_CATEGORIES,
    GRADE_ORDER,
    INJECTION_ROUTES,
    TEST_CATEGORIES,
    Check,
    Period,
    Thresholds,
    ratio,
)

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
    scope, params = duck.scope_of(department, prescriber)
    params |= {"prev": prev.start, "cur": period.start, "end": period.end}
    src, by_doctor, at, lines = "rx", "rx", "prescribed_at", "count(*)"
    if not scope and duck.summarised(con, prev.start, period.end, "rx_drugs", "rx_prescribers"):
        src, by_doctor, at, lines = "rx_drugs", "rx_prescribers", "month", "sum(lines)"
    agg = duck.rows(con, f"""
        WITH a AS (
            SELECT drug_code, any_value(generic_name) AS generic_name,
                   any_value(specification) AS specification, any_value(unit) AS unit,
                   sum(amount) FILTER (WHERE {at} >= $cur) AS amount,
                   sum(quantity) FILTER (WHERE {at} >= $cur) AS quantity,
                   {lines} FILTER (WHERE {at} >= $cur) AS lines,
                   sum(amount) FILTER (WHERE {at} < $cur) AS prev_amount,
                   sum(quantity) FILTER (WHERE {at} < $cur) AS prev_quantity
            FROM {src} WHERE {at} >= $prev AND {at} < $end {scope}
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
        rows = duck.rows(con, f"""
            SELECT drug_code, prescriber_code, any_value(prescriber_name) AS prescriber_name,
                   any_value(department_name) AS department_name,
                   sum(amount) AS amount, sum(quantity) AS quantity
            FROM {by_doctor} WHERE {at} >= $cur AND {at} < $end {scope}
              AND drug_code IN (SELECT unnest({duck.sql_list(codes)}))
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
    drugs, tests = duck.sql_list(DRUG_CATEGORIES), duck.sql_list(TEST_CATEGORIES)
    src, at = "charges", "charged_on"
    if duck.summarised(con, start, end, "charges_income"):
        src, at = "charges_income", "month"
    rows = con.execute(f"""
        SELECT strftime({at}, '%Y-%m') AS month, department_code,
               any_value(department_name), sum(amount),
               coalesce(sum(amount) FILTER (WHERE list_contains({drugs}, category)), 0),
               coalesce(sum(amount) FILTER (WHERE category = 'drug_herbal'), 0),
               coalesce(sum(amount) FILTER (WHERE category = 'consumable'), 0),
               coalesce(sum(amount) FILTER (WHERE list_contains({tests}, category)), 0)
        FROM {src} WHERE {at} >= $start AND {at} < $end
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
    scope, params = duck.scope_of(department, None)
    params |= {"start": start, "end": end}
    if not scope and duck.summarised(con, start, end, "rx_drugs", "rx_counts", one_file=True):
        return _drug_shares_summarised(con, params, key_drugs)
    row = duck.exec_sql(con, f"""
        WITH l AS (SELECT * FROM rx WHERE prescribed_at >= $start AND prescribed_at < $end
                   {scope}),
        vbp AS (SELECT DISTINCT generic_name FROM l WHERE is_vbp),
        names AS (SELECT DISTINCT generic_name FROM l),
        keyed AS (SELECT DISTINCT generic_name FROM names, unnest({duck.sql_list(key_drugs)})
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
        FROM l""", params).fetchone()
    assert row is not None
    a, b, c, d, e, f = (float(v) for v in row[:6])
    return DrugShares(a, b, c, d, e, f, int(row[6]), int(row[7]), int(row[8]))


def _drug_shares_summarised(con: duckdb.DuckDBPyConnection, params: dict[str, Any],
                            key_drugs: Sequence[str]) -> DrugShares:
    """drug_shares from the per-drug summary and the distinct counts of one file."""
    row = duck.exec_sql(con, f"""
        WITH l AS (SELECT * FROM rx_drugs WHERE month >= $start AND month < $end),
        names AS (SELECT generic_name, bool_or(is_vbp) AS vbp FROM l GROUP BY ALL),
        keyed AS (SELECT DISTINCT generic_name FROM names, unnest({duck.sql_list(key_drugs)})
                  AS k(name) WHERE contains(generic_name, k.name)),
        s AS (SELECT coalesce(sum(quantity) FILTER (WHERE is_vbp), 0),
               coalesce(sum(quantity) FILTER (WHERE n.vbp), 0),
               coalesce(sum(amount) FILTER (WHERE is_vbp), 0),
               coalesce(sum(amount) FILTER (WHERE n.vbp), 0),
               coalesce(sum(amount) FILTER (WHERE generic_name IN (FROM keyed)), 0),
               coalesce(sum(amount), 0)
              FROM l JOIN names n USING (generic_name))
        SELECT s.*, c.outpatient_visits, c.essential_visits, c.prescriptions
        FROM s, rx_counts c WHERE c.month >= $start AND c.month < $end""",
                params).fetchone()
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
               bool_or(list_contains({duck.sql_list(INJECTION_ROUTES)}, route)) AS injection,
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
    scope, params = duck.scope_of(department, None)
    params |= {"start": start, "end": end}
    con.execute("CREATE OR REPLACE TEMP TABLE privileges (code VARCHAR, grade INTEGER)")
    if privileges:
        con.executemany("INSERT INTO privileges VALUES (?, ?)",
                        [(c, GRADE_ORDER[g]) for c, g in privileges])
    summarised = not scope and duck.summarised(con, start, end, "rx_prescriptions",
                                           "rx_profiles", "rx_counts", one_file=True)
    if summarised:
        # The stored per-prescription rows of the one file of this month, and their
        # profiles (prescriptions alike for the checks, counted) for the counts.
        # The privilege is a lookup expression, not a join, so that DuckDB can stop reading
        # the time-sorted file once a listing has its first rows.
        grant = (f"([{', '.join(str(GRADE_ORDER[g]) for _c, g in privileges)}])"
                 f"[list_position({duck.sql_list([c for c, _g in privileges])}, pc)]"
                 if privileges else "CAST(NULL AS INTEGER)")
        con.execute(f"""CREATE OR REPLACE TEMP VIEW p AS
            SELECT *, {grant} AS privilege FROM rx_prescriptions
            WHERE prescribed_at >= DATE '{start.isoformat()}'
              AND prescribed_at < DATE '{end.isoformat()}'""")
        src, n = (f"(SELECT *, {grant} AS privilege FROM rx_profiles "
                  "WHERE month >= $start AND month < $end)"), "sum(n)"
        distinct = "(SELECT sum(inpatient_abx_visits) FROM rx_counts " \
            "WHERE month >= $start AND month < $end)"
    else:
        duck.exec_sql(con, f"""CREATE OR REPLACE TEMP TABLE p_lines AS
            SELECT q.*, v.grade AS privilege FROM ({_per_prescription(scope)}) q
            LEFT JOIN privileges v ON v.code = q.pc""", params)
        con.execute("CREATE OR REPLACE TEMP VIEW p AS FROM p_lines")
        src, n = "p", "count(*)"
        distinct = ("count(DISTINCT visit_id) FILTER "
                    "(WHERE visit_type = 'inpatient' AND abx > 0)")
    conditions = _check_conditions(thresholds)
    tallies = {
        "outpatient": "visit_type = 'outpatient'",
        "outpatient_abx": "visit_type = 'outpatient' AND abx > 0",
        "emergency": "visit_type = 'emergency'",
        "emergency_abx": "visit_type = 'emergency' AND abx > 0",
        "outpatient_injection": "visit_type = 'outpatient' AND injection",
    } | {k.value: c for k, c in conditions.items()}
    row = duck.rows(con, f"""
        SELECT {", ".join(f"coalesce({n} FILTER (WHERE {c}), 0) AS {k}"
                          for k, c in tallies.items())},
               {distinct} AS inpatient_abx_visits
        FROM {src}""", params)[0]
    counts = {k: int(v or 0) for k, v in row.items()}
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
        findings[check] = [] if limit <= 0 or not counts[check.value] else duck.rows(con, f"""
            SELECT prescription_id, prescribed_at, visit_type, pc AS prescriber_code,
                   prescriber_name, department_name, drugs, days, abx, grade, amount
            FROM p WHERE {cond} ORDER BY prescribed_at, prescription_id LIMIT {int(limit)}""")
    any_finding = " OR ".join(f"({c})" for c in conditions.values())
    prescribers = duck.rows(con, f"""
        SELECT pc AS prescriber_code, any_value(prescriber_name) AS prescriber_name,
               any_value(department_name) AS department_name, {n} AS findings
        FROM {src} WHERE {any_finding} GROUP BY pc ORDER BY findings DESC, pc LIMIT 20""",
                        params)
    return Rational(indicators=indicators, counts=counts, findings=findings,
                    finding_counts={k: counts[k.value] for k in conditions},
                    prescribers=prescribers, lines_without_ddd=missing)


def _inpatient(con: duckdb.DuckDBPyConnection, params: dict[str, Any], scope: str,
               ddd: Sequence[tuple[str, float, float]]) -> tuple[int, float, float, int]:
    """(inpatient visits, patient-days, antibacterial DDDs, antibacterial lines without a
    DDD value). Visits and patient-days come from the charges (bed charges count days)."""
    start, end = params["start"], params["end"]
    if not scope and duck.summarised(con, start, end, "charges_income", "charges_counts",
                                 one_file=True) and duck.summarised(con, start, end, "rx_drugs"):
        return _inpatient_summarised(con, params, ddd)
    dept = " AND department_code = $department" if "department" in params else ""
    row = duck.exec_sql(con, f"""
        SELECT count(DISTINCT visit_id),
               coalesce(sum(quantity) FILTER (WHERE category = 'bed'), 0)
        FROM charges WHERE visit_type = 'inpatient' AND charged_on >= $start
          AND charged_on < $end {dept}""", params).fetchone()
    visits, days = (int(row[0]), float(row[1])) if row else (0, 0.0)
    _ddd_table(con, ddd)
    got = duck.exec_sql(con, f"""
        SELECT coalesce(sum(quantity * d.unit_g / d.ddd_g), 0),
               count(*) FILTER (WHERE d.code IS NULL)
        FROM rx LEFT JOIN ddd d ON d.code = rx.drug_code
        WHERE visit_type = 'inpatient' AND antibacterial_grade <> 'none'
          AND prescribed_at >= $start AND prescribed_at < $end {scope}""", params).fetchone()
    ddds, missing = (float(got[0]), int(got[1])) if got else (0.0, 0)
    return visits, days, ddds, missing


def _ddd_table(con: duckdb.DuckDBPyConnection, ddd: Sequence[tuple[str, float, float]]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE ddd (code VARCHAR, ddd_g DOUBLE, unit_g DOUBLE)")
    if ddd:
        con.executemany("INSERT INTO ddd VALUES (?, ?, ?)", list(ddd))


def _inpatient_summarised(con: duckdb.DuckDBPyConnection, params: dict[str, Any],
                          ddd: Sequence[tuple[str, float, float]]
                          ) -> tuple[int, float, float, int]:
    """_inpatient from the summaries of one month."""
    row = duck.exec_sql(con, """
        SELECT (SELECT sum(inpatient_visits) FROM charges_counts
                WHERE month >= $start AND month < $end),
               (SELECT coalesce(sum(quantity), 0) FROM charges_income
                WHERE visit_type = 'inpatient' AND category = 'bed'
                  AND month >= $start AND month < $end)""", params).fetchone()
    visits, days = (int(row[0] or 0), float(row[1])) if row else (0, 0.0)
    _ddd_table(con, ddd)
    got = duck.exec_sql(con, """
        SELECT coalesce(sum(inpatient_abx_quantity * d.unit_g / d.ddd_g), 0),
               coalesce(sum(inpatient_abx_lines) FILTER (WHERE d.code IS NULL), 0)
        FROM rx_drugs LEFT JOIN ddd d ON d.code = rx_drugs.drug_code
        WHERE inpatient_abx_lines > 0 AND month >= $start AND month < $end""",
                params).fetchone()
    ddds, missing = (float(got[0]), int(got[1])) if got else (0.0, 0)
    return visits, days, ddds, missing


def prescriptions_for(con: duckdb.DuckDBPyConnection, start: date, end: date,
                      thresholds: Thresholds, check: Check, *, limit: int = 500,
                      offset: int = 0) -> list[dict[str, Any]]:
    """Every prescription (paged) that a check found, after ``rational`` filled ``p``."""
    cond = _check_conditions(thresholds)[check]
    return duck.rows(con, f"""
        SELECT prescription_id, prescribed_at, visit_type, pc AS prescriber_code,
               prescriber_name, department_name, drugs, days, abx, grade, amount
        FROM p WHERE {cond} ORDER BY prescribed_at, prescription_id
        LIMIT {int(limit)} OFFSET {int(offset)}""")


def prescribes(con: duckdb.DuckDBPyConnection, drug_code: str) -> bool:
    """Whether any line of the open months prescribes ``drug_code``."""
    return bool(duck.rows(con, "SELECT 1 AS found FROM rx WHERE drug_code = $code LIMIT 1",
                          {"code": drug_code}))


def prescription_lines(con: duckdb.DuckDBPyConnection,
                       prescription_id: str) -> list[dict[str, Any]]:
    """The lines of one prescription, in file order of drug code."""
    return duck.rows(con, "SELECT * FROM rx WHERE prescription_id = $id ORDER BY drug_code",
                 {"id": prescription_id})
