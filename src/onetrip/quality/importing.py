"""Read HIS exports (CSV, Excel, Parquet), validate every row, write one Parquet file.

The file is read in batches as text (pyarrow for CSV and Parquet, openpyxl for Excel), each
batch is parsed and checked by DuckDB into a typed staging table, and each row carries a
bit mask of what is wrong with it. Only a file without a single bad row is written: to a
temporary name first, then renamed. Making it the current file of its month is the
database's job (service.import_file), so a failed transaction leaves nothing visible.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from onetrip.errors import InvalidInput
from onetrip.quality import summaries
from onetrip.quality.rules import (
    BOOL_ALIASES,
    FIELDS,
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


class UnsupportedFile(InvalidInput):
    code = "quality_unsupported_file"
    message = "只支持 CSV、Excel（.xlsx）和 Parquet 文件"


class EmptyFile(InvalidInput):
    code = "quality_empty_file"
    message = "导入文件中没有数据行"


@dataclass(frozen=True)
class Written:
    rows: int
    #: Path relative to the analytics directory.
    file: str


# --- readers: each yields (arrow table of text columns, progress done, progress total) ---


def _detect_encoding(path: Path) -> str:
    head = path.open("rb").read(1 << 16)
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is not an encoding error.
        if exc.start >= len(head) - 3:
            return "utf-8"
        return "gb18030"


def _csv_header(path: Path, encoding: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as f:
        first = f.readline()
    return next(csv.reader(io.StringIO(first.lstrip("\ufeff"))), [])


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[pa.Table, int, int]]]:
    encoding = _detect_encoding(path)
    headers = _csv_header(path, encoding)
    total = path.stat().st_size

    def batches() -> Iterator[tuple[pa.Table, int, int]]:
        with path.open("rb") as raw:
            reader = pacsv.open_csv(
                raw,
                read_options=pacsv.ReadOptions(encoding=encoding, block_size=32 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(_arrow_names(headers), pa.string())),
            )
            for batch in reader:
                yield pa.Table.from_batches([batch]), min(raw.tell(), total), total

    return headers, batches()


def _arrow_names(headers: list[str]) -> list[str]:
    # pyarrow keeps a UTF-8 byte-order mark out of the first column name.
    return [h.lstrip("\ufeff") for h in headers]


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_excel(path: Path) -> tuple[list[str], Iterator[tuple[pa.Table, int, int]]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    headers = [_cell(h) or "" for h in next(rows, ())]
    total = max((ws.max_row or 1) - 1, 1)

    def batches() -> Iterator[tuple[pa.Table, int, int]]:
        done = 0
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == 20_000:
                done += len(chunk)
                yield _table(headers, chunk), done, total
                chunk = []
        if chunk:
            done += len(chunk)
            yield _table(headers, chunk), done, total
        wb.close()

    return headers, batches()


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = {h: pa.array([_cell(r[i]) if i < len(r) else None for r in rows], pa.string())
            for i, h in enumerate(headers) if h}
    return pa.table(cols)


def _read_parquet(path: Path) -> tuple[list[str], Iterator[tuple[pa.Table, int, int]]]:
    pf = pq.ParquetFile(path)
    headers = list(pf.schema_arrow.names)
    total = pf.metadata.num_rows

    def batches() -> Iterator[tuple[pa.Table, int, int]]:
        done = 0
        for batch in pf.iter_batches(batch_size=500_000):
            cols = {n: pc.cast(batch.column(n), pa.string()) for n in batch.schema.names}
            done += batch.num_rows
            yield pa.table(cols), done, total

    return headers, batches()


def open_source(path: Path) -> tuple[list[str], Iterator[tuple[pa.Table, int, int]]]:
    """Headers and batches of text columns of a CSV, Excel or Parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise UnsupportedFile(detail={"file": path.name})


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
    "number": "应为数字",
    "int": "应为整数",
    "bool": "应为“是”或“否”",
    "enum": "取值不在允许范围内",
}


@dataclass(frozen=True)
class _FieldSQL:
    inner: list[str]  # expressions over the raw text, each "expr AS name"
    value: str  # the stored value, over the inner columns
    bad: str  # the bad-row condition, over the inner columns


def _field_sql(spec: FieldSpec, present: bool) -> _FieldSQL:
    """Parse once (inner select), then check and finish (outer select) one field."""
    n = spec.name
    raw = f"NULLIF(\"{n}\", '')" if present else "CAST(NULL AS VARCHAR)"
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
        bad += f" OR NOT isfinite({n})"
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


def _plan(kind: DatasetKind, present: set[str], hospital_code: str, period: Period) -> _Plan:
    inner: list[str] = []
    values: list[str] = []
    bits: list[str] = []
    checks: list[tuple[str, str]] = []
    for spec in FIELDS[kind]:
        f = _field_sql(spec, spec.name in present)
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
        checks.append((spec.label, _MESSAGES[spec.type]
                       if spec.type != "number" or spec.minimum is None else "应为不小于0的数字"))
    when = next(s for s in FIELDS[kind] if s.name == PERIOD_FIELD[kind])
    start, end = period.start.isoformat(), period.end.isoformat()
    bits.append(f"coalesce(CAST({when.name} AS DATE) < DATE '{start}' OR "
                f"CAST({when.name} AS DATE) >= DATE '{end}', FALSE)")
    checks.append((when.label, f"不在导入的月份 {period.label} 内"))
    mask = " + ".join(f"(CASE WHEN {b} THEN {1 << i} ELSE 0 END)" for i, b in enumerate(bits))
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
    con = connect(threads, analytics_dir / ".tmp")
    try:
        return _stage_and_write(con, batches, rename, kind, hospital_code, period,
                                analytics_dir, progress)
    finally:
        con.close()


def _stage_and_write(con: duckdb.DuckDBPyConnection,
                     batches: Iterator[tuple[pa.Table, int, int]], rename: dict[str, str],
                     kind: DatasetKind, hospital_code: str, period: Period,
                     analytics_dir: Path, progress: Progress | None) -> Written:
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
    relative = Path(kind.value) / hospital_code / period.label / f"{uuid.uuid4().hex}.parquet"
    final = analytics_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_suffix(".parquet.tmp")
    summaries.write(con, "staging", kind, final)
    con.execute(f"COPY (SELECT * EXCLUDE (__bad, __row) FROM staging) TO {_quote(str(tmp))} "
                "(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 500000)")
    os.replace(tmp, final)
    rows_written = _scalar(con, "SELECT count(*) FROM staging")
    return Written(rows=rows_written, file=relative.as_posix())


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
    relative = Path(kind.value) / hospital_code / period.label / f"{uuid.uuid4().hex}.parquet"
    final = analytics_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    con = connect()
    try:
        con.register("trusted", table)
        summaries.write(con, "trusted", kind, final)
    finally:
        con.close()
    os.replace(tmp, final)
    return Written(rows=n, file=relative.as_posix())
