"""The DuckDB side of the analyses: a connection over the imported files (and their
summaries), and the small helpers every analysis uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from onetrip.quality import summaries
from onetrip.quality.importing import connect
from onetrip.quality.rules import FIELDS, DatasetKind

_DUCK_TYPES = {"text": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE",
               "number": "DOUBLE", "int": "INTEGER", "bool": "BOOLEAN", "enum": "VARCHAR"}


def sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def open_engine(rx_files: Sequence[Path], charge_files: Sequence[Path],
                threads: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose ``rx`` and ``charges`` views read these files."""
    con = connect(threads)
    # The files never change (a re-import writes a new one), so their footers may be cached.
    con.execute("SET parquet_metadata_cache = true")
    for name, kind, files in (("rx", DatasetKind.prescriptions, rx_files),
                              ("charges", DatasetKind.charges, charge_files)):
        if files:
            paths = sql_list([str(f) for f in files])
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({paths})")
            if summaries.complete(kind, files):
                for part in summaries.SQL[kind]:
                    parts = sql_list([str(summaries.path_of(f, part)) for f in files])
                    con.execute(f"CREATE VIEW {name}_{part} AS "
                                f"SELECT * FROM read_parquet({parts})")
        else:
            cols = ", ".join(f"{s.name} {_DUCK_TYPES[s.type]}" for s in FIELDS[kind])
            con.execute(f"CREATE TABLE {name} ({cols})")
    return con


def exec_sql(con: duckdb.DuckDBPyConnection, sql: str,
          params: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Execute with only the parameters the statement names (DuckDB refuses extras)."""
    used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
    return con.execute(sql, used)


def rows(con: duckdb.DuckDBPyConnection, sql: str,
          params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = exec_sql(con, sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def summarised(con: duckdb.DuckDBPyConnection, start: date, end: date, *views: str,
                one_file: bool = False) -> bool:
    """Whether [start, end) is whole months and these summary views exist (with exactly
    one file in the range if ``one_file``: distinct counts do not add up over files)."""
    if start.day != 1 or end.day != 1:
        return False
    found = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if not set(views) <= found:
        return False
    if one_file:
        kind = views[0].split("_")[0]
        row = con.execute(f"SELECT count(*) FROM {kind}_counts WHERE month >= $s AND "
                          "month < $e", {"s": start, "e": end}).fetchone()
        return row is not None and row[0] == 1
    return True


def scope_of(department: str | None, prescriber: str | None) -> tuple[str, dict[str, Any]]:
    sql, params = "", {}
    if department:
        sql += " AND department_code = $department"
        params["department"] = department
    if prescriber:
        sql += " AND prescriber_code = $prescriber"
        params["prescriber"] = prescriber
    return sql, params
