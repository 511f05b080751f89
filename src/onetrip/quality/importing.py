"""Validate HIS exports (CSV, Excel, Parquet) row by row and write one Parquet file.

Two ways in. A clean UTF-8 CSV, the common case, is parsed, checked and written by
DuckDB's parallel CSV reader in one streaming statement (the typed path). Anything else,
and any CSV in which the typed path finds a problem, is read in batches as text
(readers.py), parsed and checked by DuckDB into a typed staging table where each row
carries a bit mask of what is wrong with it, so the error report names every bad row and
field. Only a file without a single bad row is written: to a temporary name first, then
renamed. Making it the current file of its month is the database's job
(service.import_file), so a failed transaction leaves nothing visible.
"""
from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from onetrip.errors import InvalidInput
from onetrip.quality import summaries
from onetrip.quality.readers import (
    detect_encoding,
    open_source,
)
from onetrip.quality.rules import (
    BOOL_ALIASES,
    FIELDS,
    NUMBER_BOUND,
    PERIOD_FIELD,
    DatasetKind,
    FieldSpec,
    Period,
    resolve_columns,
)

Progress = Callable[[int, int], None]
MAX_REPORTED_ERRORS = 200
#: What DuckDB's trim() removes (Unicode category Zs); trimmed in Arrow, which is cheaper.
SPACES = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"


class ImportRejected(InvalidInput):
    code = "quality_import_rejected"
    message = "导入文件中有错误的行，整份文件未导入"


class MissingColumns(InvalidInput):
    code = "quality_missing_columns"
    message = "导入文件缺少必需的列"


class EmptyFile(InvalidInput):
    code = "quality_empty_file"
    message = "导入文件中没有数据行"


@dataclass(frozen=True)
class Written:
    rows: int
    #: Path relative to the analytics directory.
    file: str


# --- parsing and checking in DuckDB ---------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _choice_case(raw: str, choices: dict[str, tuple[str, ...]]) -> str:
    whens = []
    for canonical, aliases in choices.items():
        words = sorted({canonical, *(a.lower() for a in aliases)} - {""})
        whens.append(f"WHEN lower({raw}) IN ({', '.join(map(_quote, words))}) "
                     f"THEN {_quote(canonical)}")
    return f"CASE {' '.join(whens)} END"


_MESSAGES = {
    "text": "不能为空",
    "timestamp": "时间格式应为 YYYY-MM-DD HH:MM",
    "date": "日期格式应为 YYYY-MM-DD",
    "number": "应为数字，绝对值不超过10亿",
    "int": "应为整数",
    "bool": "应为“是”或“否”",
    "enum": "取值不在允许范围内",
}


#: The DuckDB type the CSV reader parses a field into on the fast path (the rest is text).
_READER_TYPES = {"timestamp": "TIMESTAMP", "date": "TIMESTAMP", "number": "DOUBLE",
                 "int": "DOUBLE"}


@dataclass(frozen=True)
class _FieldSQL:
    inner: list[str]  # expressions over the raw text, each "expr AS name"
    value: str  # the stored value, over the inner columns
    bad: str  # the bad-row condition, over the inner columns


def _field_sql(spec: FieldSpec, present: bool, typed: bool) -> _FieldSQL:
    """Parse once (inner select), then check and finish (outer select) one field. With
    ``typed``, the reader has already parsed the timestamp and number columns."""
    n = spec.name
    if not present:
        raw = "CAST(NULL AS VARCHAR)"
    elif typed and spec.type in _READER_TYPES:
        raw = f"\"{n}\""
    else:
        raw = f"NULLIF(\"{n}\", '')"
    given = f"{n}__given"
    inner_given = f"({raw} IS NOT NULL) AS {given}"
    if spec.type == "text":
        return _FieldSQL([f"{raw} AS {n}"], n, f"({n} IS NULL)" if spec.required else "FALSE")
    missing = f" OR NOT {given}" if spec.required else ""
    if spec.type == "timestamp":
        parsed = f"TRY_CAST({raw} AS TIMESTAMP)"
    elif spec.type == "date":
        parsed = f"CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE)"
    elif spec.type in ("number", "int"):
        parsed = f"TRY_CAST({raw} AS DOUBLE)"
    elif spec.type == "bool":
        parsed = _choice_case(raw, BOOL_ALIASES)
    else:
        parsed = _choice_case(raw, spec.choices)
    bad = f"({given} AND {n} IS NULL){missing}"
    value = n
    if spec.type in ("number", "int"):
        bad += f" OR NOT isfinite({n}) OR abs({n}) > {NUMBER_BOUND}"
        if spec.minimum is not None:
            bad += f" OR {n} < {spec.minimum}"
        if spec.type == "int":
            bad += (f" OR {n} <> round({n})"
                    f" OR ({n} IS NOT NULL AND TRY_CAST({n} AS INTEGER) IS NULL)")
            value = f"TRY_CAST({n} AS INTEGER)"
    elif spec.type == "bool":
        value = f"coalesce({n} = 'true', FALSE)"
    elif spec.type == "enum" and spec.default is not None:
        value = f"coalesce({n}, {_quote(spec.default)})"
    return _FieldSQL([f"{parsed} AS {n}", inner_given], value, bad)


@dataclass(frozen=True)
class _Plan:
    select: str
    checks: list[tuple[str, str]]  # (field label, message) per bit


def _plan(kind: DatasetKind, present: set[str], hospital_code: str, period: Period,
          typed: bool = False) -> _Plan:
    inner: list[str] = []
    values: list[str] = []
    bits: list[str] = []
    checks: list[tuple[str, str]] = []
    for spec in FIELDS[kind]:
        f = _field_sql(spec, spec.name in present, typed)
        inner += f.inner
        if spec.name == "hospital":
            checks.append((spec.label, f"与导入的医院 {hospital_code} 不符"))
            bits.append(f"coalesce(hospital <> {_quote(hospital_code)}, FALSE)")
            values.append(f"{_quote(hospital_code)} AS hospital")
            continue
        value = f.value
        if spec.name == "amount" and kind is DatasetKind.prescriptions:
            value = "coalesce(amount, round(quantity * unit_price, 2))"
        if spec.name == "department_name":
            value = "coalesce(department_name, department_code)"
        values.append(f"{value} AS {spec.name}")
        bits.append(f.bad)
        message = _MESSAGES[spec.type]
        if spec.type == "number" and spec.minimum is not None:
            message = "应为0到10亿之间的数字"
        checks.append((spec.label, message))
    when = next(s for s in FIELDS[kind] if s.name == PERIOD_FIELD[kind])
    start, end = period.start.isoformat(), period.end.isoformat()
    bits.append(f"coalesce(CAST({when.name} AS DATE) < DATE '{start}' OR "
                f"CAST({when.name} AS DATE) >= DATE '{end}', FALSE)")
    checks.append((when.label, f"不在导入的月份 {period.label} 内"))
    if typed:  # the typed path only needs to know whether a row is bad, not why
        mask = f"CASE WHEN coalesce({' OR '.join(f'({b})' for b in bits)}, FALSE) THEN 1 ELSE 0 END"
    else:
        mask = " + ".join(f"(CASE WHEN {b} THEN {1 << i} ELSE 0 END)"
                          for i, b in enumerate(bits))
    # Parse each raw text column once (inner), then check and finish the values (outer).
    select = (f"SELECT {', '.join(values)}, __row, CAST({mask} AS BIGINT) AS __bad "
              f"FROM (SELECT {', '.join(inner)}, __row FROM batch)")
    return _Plan(select=select, checks=checks)


def connect(threads: int = 0, temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with OneTrip's settings."""
    con = duckdb.connect(config={"preserve_insertion_order": False})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {_quote(str(temp_dir))}")
    return con


def write_dataset(source: Path, *, kind: DatasetKind, hospital_code: str, period: Period,
                  analytics_dir: Path, mapping: dict[str, str] | None = None,
                  progress: Progress | None = None, threads: int = 0) -> Written:
    """Validate ``source`` and write it as a new Parquet file; raises ImportRejected with
    the bad rows (row 1 is the header, as in Excel) and writes nothing if any row is bad."""
    headers, batches = open_source(source)
    try:
        columns, missing = resolve_columns(kind, headers, mapping)
    except ValueError as exc:
        raise InvalidInput("列映射中有未知字段", detail={"error": str(exc)}) from exc
    if missing:
        raise MissingColumns(detail={"missing": missing, "headers": headers})
    rename = {header: name for name, header in columns.items()}
    relative, final, tmp = _new_file(kind, hospital_code, period, analytics_dir)
    con = connect(threads, analytics_dir / ".tmp")
    try:
        if not _write_typed(con, source, headers, rename, kind, hospital_code, period,
                            progress, tmp):
            _stage_batches(con, batches(rename), rename, kind, hospital_code, period,
                           progress)
            con.execute("COPY (SELECT * EXCLUDE (__bad, __row) FROM staging) TO "
                        f"{_quote(str(tmp))} ({_LINE_FILE})")
        lines = f"read_parquet({_quote(str(tmp))})"
        summaries.write(con, lines, kind, final)
        rows = _scalar(con, f"SELECT count(*) FROM {lines}")
        os.replace(tmp, final)
        return Written(rows=rows, file=relative.as_posix())
    finally:
        con.close()
        tmp.unlink(missing_ok=True)


def _new_file(kind: DatasetKind, hospital_code: str, period: Period,
              analytics_dir: Path) -> tuple[Path, Path, Path]:
    """A new line file's name (relative to the analytics directory), its path and the
    temporary path it is written to before being renamed into place."""
    relative = Path(kind.value) / hospital_code / period.label / f"{uuid.uuid4().hex}.parquet"
    final = analytics_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    return relative, final, final.with_suffix(".parquet.tmp")


#: How line files are written: large row groups, cheap compression.
_LINE_FILE = "FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 500000"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write_typed(con: duckdb.DuckDBPyConnection, source: Path, headers: list[str],
                 rename: dict[str, str], kind: DatasetKind, hospital_code: str,
                 period: Period, progress: Progress | None, target: Path) -> bool:
    """Write a clean UTF-8 CSV's rows to ``target`` in one streaming statement: DuckDB's
    parallel reader parses the time and number columns itself and the first bad row aborts
    the statement, which is what makes ten million lines fit in half a minute. Whatever
    goes wrong here (a value that does not parse, a bad row, an odd or empty file) returns
    False and leaves no file; the batch path then reports every bad row by number."""
    if source.suffix.lower() not in (".csv", ".txt") or detect_encoding(source) != "utf-8":
        return False
    if len(set(headers)) != len(headers) or "" in headers:
        return False
    specs = {s.name: s for s in FIELDS[kind]}
    types = {h: _READER_TYPES.get(specs[rename[h]].type, "VARCHAR") if h in rename
             else "VARCHAR" for h in headers}
    columns = "{" + ", ".join(f"{_quote(h)}: '{t}'" for h, t in types.items()) + "}"
    select = ", ".join(f"{_ident(h)} AS {_ident(n)}" if types[h] != "VARCHAR"
                       else f"trim({_ident(h)}) AS {_ident(n)}" for h, n in rename.items())
    plan = _plan(kind, set(rename.values()), hospital_code, period, typed=True)
    con.execute(f"CREATE TEMP VIEW batch AS SELECT {select}, CAST(0 AS BIGINT) AS __row "
                f"FROM read_csv({_quote(str(source))}, header = true, auto_detect = false, "
                f"delim = ',', quote = '\"', escape = '\"', columns = {columns})")
    try:
        with _polled(con, progress, source.stat().st_size):
            con.execute(f"COPY (SELECT * EXCLUDE (__bad, __row) FROM ({plan.select}) "
                        "WHERE CASE WHEN __bad = 0 THEN TRUE ELSE error('bad row') END) "
                        f"TO {_quote(str(target))} ({_LINE_FILE})")
        if _scalar(con, f"SELECT count(*) FROM read_parquet({_quote(str(target))})"):
            return True
    except duckdb.Error:
        pass
    finally:
        con.execute("DROP VIEW batch")
    target.unlink(missing_ok=True)
    return False


@contextmanager
def _polled(con: duckdb.DuckDBPyConnection, progress: Progress | None,
            total: int) -> Iterator[None]:
    """Report DuckDB's progress on the running statement every half second."""
    if progress is None:
        yield
        return
    # DuckDB tracks a statement's progress only with its progress bar on (not printed).
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.5):
            share = con.query_progress()
            if share >= 0:
                progress(int(total * min(share, 100.0) / 100), total)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield
    finally:
        done.set()
        poller.join()
    progress(total, total)


def _stage_batches(con: duckdb.DuckDBPyConnection,
                   batches: Iterator[tuple[pa.Table, int, int]], rename: dict[str, str],
                   kind: DatasetKind, hospital_code: str, period: Period,
                   progress: Progress | None) -> None:
    """Stage any source batch by batch as text, numbering the rows; raises ImportRejected
    with every bad row (up to MAX_REPORTED_ERRORS) and what is wrong with it."""
    plan: _Plan | None = None
    first_row = 2
    for table, done, total in batches:
        keep = [h for h in table.column_names if h in rename]
        n = table.num_rows
        batch = pa.table({rename[h]: pc.utf8_trim(table[h], SPACES) for h in keep}
                         | {"__row": pa.array(range(first_row, first_row + n), pa.int64())})
        first_row += n
        if plan is None:
            plan = _plan(kind, set(batch.column_names), hospital_code, period)
            con.register("batch", batch)
            con.execute(f"CREATE TABLE staging AS {plan.select}")
        else:
            con.register("batch", batch)
            con.execute(f"INSERT INTO staging {plan.select}")
        con.unregister("batch")
        if progress is not None:
            progress(done, total)
    if plan is None or first_row == 2:
        raise EmptyFile()
    bad_count = _scalar(con, "SELECT count(*) FROM staging WHERE __bad <> 0")
    if bad_count:
        rows = con.execute("SELECT __row, __bad FROM staging WHERE __bad <> 0 ORDER BY __row "
                           f"LIMIT {MAX_REPORTED_ERRORS}").fetchall()
        errors = [{"row": row, "field": label, "message": message}
                  for row, mask in rows
                  for i, (label, message) in enumerate(plan.checks) if mask & (1 << i)]
        raise ImportRejected(
            f"导入文件有 {bad_count} 行错误（首个错误在第 {rows[0][0]} 行），整份文件未导入",
            detail={"bad_rows": bad_count, "errors": errors})


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


_ARROW_TYPES = {"text": pa.string(), "timestamp": pa.timestamp("us"), "date": pa.date32(),
                "number": pa.float64(), "int": pa.int32(), "bool": pa.bool_(),
                "enum": pa.string()}


def arrow_schema(kind: DatasetKind) -> pa.Schema:
    """The schema of a stored Parquet file (what DuckDB writes after validation)."""
    return pa.schema([(s.name, _ARROW_TYPES[s.type]) for s in FIELDS[kind]])


def write_trusted(columns: dict[str, list[Any]], *, kind: DatasetKind, hospital_code: str,
                  period: Period, analytics_dir: Path) -> Written:
    """Write rows that are valid by construction (the demo) straight to a new file."""
    schema = arrow_schema(kind)
    n = len(next(iter(columns.values())))
    columns = {**columns, "hospital": [hospital_code] * n}
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * n), f.type)
                      for f in schema}, schema=schema)
    relative, final, tmp = _new_file(kind, hospital_code, period, analytics_dir)
    pq.write_table(table, tmp, compression="zstd")
    con = connect()
    try:
        con.register("trusted", table)
        summaries.write(con, "trusted", kind, final)
    finally:
        con.close()
    os.replace(tmp, final)
    return Written(rows=n, file=relative.as_posix())
