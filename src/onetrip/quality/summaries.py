"""Summary files written next to each imported month, so that the hospital-wide analyses of
whole months read thousands of rows instead of millions.

Each line file ``<uuid>.parquet`` gets companions ``<uuid>.<name>.parquet``, computed from
the same validated rows in the same import and renamed into place before the line file, so
a current line file always has current summaries: re-importing a month writes a new uuid
and both are replaced together. Everything here is additive over files except the distinct
counts (``counts``) and the per-prescription rows, which the engine uses only when a period
is one month of one file. Files without summaries (imported before they existed) are read
the old way, from the lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import duckdb

from onetrip.quality.rules import GRADE_ORDER, INJECTION_ROUTES, DatasetKind

_INJECTION = "[" + ", ".join(f"'{r}'" for r in INJECTION_ROUTES) + "]"
_GRADE = (f"CASE antibacterial_grade WHEN 'special' THEN {GRADE_ORDER['special']} "
          f"WHEN 'restricted' THEN {GRADE_ORDER['restricted']} "
          f"WHEN 'unrestricted' THEN {GRADE_ORDER['unrestricted']} ELSE 0 END")
_INPATIENT_ABX = "visit_type = 'inpatient' AND antibacterial_grade <> 'none'"

#: name -> SELECT over ``{src}`` (the validated rows of one month of one hospital) or
#: ``{prescriptions}`` (the per-prescription summary, written first).
SQL: dict[DatasetKind, dict[str, str]] = {
    DatasetKind.prescriptions: {
        # Per drug: double ten, the 集采 and key-drug shares, and DDDs of inpatients.
        "drugs": f"""
            SELECT CAST(date_trunc('month', prescribed_at) AS DATE) AS month, drug_code,
                   generic_name, is_vbp, any_value(specification) AS specification,
                   any_value(unit) AS unit, sum(amount) AS amount, sum(quantity) AS quantity,
                   count(*) AS lines,
                   coalesce(sum(quantity) FILTER (WHERE {_INPATIENT_ABX}), 0)
                       AS inpatient_abx_quantity,
                   count(*) FILTER (WHERE {_INPATIENT_ABX}) AS inpatient_abx_lines
            FROM {{src}} GROUP BY ALL ORDER BY drug_code""",
        # Per drug and prescriber: the contributors of double ten.
        "prescribers": """
            SELECT CAST(date_trunc('month', prescribed_at) AS DATE) AS month, drug_code,
                   prescriber_code, any_value(prescriber_name) AS prescriber_name,
                   any_value(department_name) AS department_name,
                   sum(amount) AS amount, sum(quantity) AS quantity
            FROM {src} GROUP BY ALL ORDER BY drug_code, prescriber_code""",
        # Per prescription: the rational-use checks (engine._per_prescription, stored).
        "prescriptions": f"""
            SELECT prescription_id, min(prescribed_at) AS prescribed_at,
                   any_value(visit_type) AS visit_type, any_value(prescription_kind) AS kind,
                   any_value(prescriber_code) AS pc,
                   any_value(prescriber_name) AS prescriber_name,
                   any_value(department_name) AS department_name,
                   any_value(visit_id) AS visit_id, bool_or(is_long_term) AS long_term,
                   max(supply_reason) AS reason, count(*) AS drugs,
                   coalesce(max(days_supply), 0) AS days,
                   count(*) FILTER (WHERE antibacterial_grade <> 'none') AS abx,
                   max({_GRADE}) AS grade, bool_or(is_controlled) AS controlled,
                   bool_or(list_contains({_INJECTION}, route)) AS injection,
                   sum(amount) AS amount
            FROM {{src}} GROUP BY prescription_id ORDER BY prescribed_at, prescription_id""",
        # Prescriptions alike in everything the checks look at, counted: the check counts
        # and the prescribers with findings, for any thresholds and privileges.
        "profiles": """
            SELECT CAST(date_trunc('month', prescribed_at) AS DATE) AS month,
                   visit_type, kind, pc, long_term,
                   CASE WHEN coalesce(reason, '') = '' THEN '' ELSE 'y' END AS reason,
                   drugs, days, abx, grade, controlled, injection, count(*) AS n,
                   any_value(prescriber_name) AS prescriber_name,
                   any_value(department_name) AS department_name
            FROM {prescriptions} GROUP BY ALL""",
        # Distinct counts of the file (not additive over files).
        "counts": """
            SELECT CAST(date_trunc('month', min(prescribed_at)) AS DATE) AS month,
                   (SELECT count(*) FROM {prescriptions}) AS prescriptions,
                   count(DISTINCT visit_id) FILTER (WHERE visit_type = 'outpatient')
                       AS outpatient_visits,
                   count(DISTINCT visit_id) FILTER (WHERE visit_type = 'outpatient'
                                                    AND is_essential) AS essential_visits,
                   (SELECT count(DISTINCT visit_id) FROM {prescriptions}
                    WHERE visit_type = 'inpatient' AND abx > 0) AS inpatient_abx_visits
            FROM {src}""",
    },
    DatasetKind.charges: {
        "income": """
            SELECT CAST(date_trunc('month', charged_on) AS DATE) AS month, department_code,
                   any_value(department_name) AS department_name, visit_type, category,
                   sum(amount) AS amount, sum(quantity) AS quantity
            FROM {src} GROUP BY ALL ORDER BY department_code""",
        "counts": """
            SELECT CAST(date_trunc('month', min(charged_on)) AS DATE) AS month,
                   count(DISTINCT visit_id) FILTER (WHERE visit_type = 'inpatient')
                       AS inpatient_visits
            FROM {src}""",
    },
}


def path_of(line_file: Path, name: str) -> Path:
    """Where the summary ``name`` of a line file lives."""
    return line_file.with_name(f"{line_file.name.removesuffix('.parquet')}.{name}.parquet")


def paths_of(line_file: Path) -> list[Path]:
    """Every summary a line file may have (for garbage collection)."""
    return sorted({path_of(line_file, n) for sql in SQL.values() for n in sql})


def complete(kind: DatasetKind, files: Iterable[Path]) -> bool:
    """Whether every one of these line files has all its summaries."""
    return all(path_of(f, n).exists() for f in files for n in SQL[kind])


def write(con: duckdb.DuckDBPyConnection, src: str, kind: DatasetKind,
          line_file: Path) -> None:
    """Write the summaries of the rows in relation ``src`` next to ``line_file``."""
    prescriptions = _quote(str(path_of(line_file, "prescriptions")))
    for name, sql in SQL[kind].items():
        final = path_of(line_file, name)
        tmp = final.with_suffix(".parquet.tmp")
        query = sql.format(src=src, prescriptions=f"read_parquet({prescriptions})")
        # Small row groups let DuckDB skip the rest of a sorted file for a top-N listing.
        con.execute(f"COPY ({query}) TO {_quote(str(tmp))} "
                    "(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 16384)")
        os.replace(tmp, final)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
