"""Readers of HIS exports: CSV (UTF-8 or GBK), Excel and Parquet, each yielding batches of
text columns with the progress made, for the batch path of the importer.

A reader gives the file's headers and a function of the columns wanted (those the mapping
uses) that yields the batches. A Parquet file is read only in those columns, so a column of
a type that has no text form (a struct, a list) is refused only when a field is read from
it; CSV and Excel rows are text already and are read whole."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Collection, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from onetrip.errors import InvalidInput

Batches = Iterator[tuple[pa.Table, int, int]]
#: The batches of the columns wanted (Parquet reads only those).
Wanted = Callable[[Collection[str]], Batches]


class UnsupportedFile(InvalidInput):
    code = "quality_unsupported_file"
    message = "只支持 CSV、Excel（.xlsx）和 Parquet 文件"


def detect_encoding(path: Path) -> str:
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


def _read_csv(path: Path) -> tuple[list[str], Wanted]:
    encoding = detect_encoding(path)
    headers = _csv_header(path, encoding)
    total = path.stat().st_size

    def batches(_wanted: Collection[str]) -> Batches:
        with path.open("rb") as raw:
            reader = pacsv.open_csv(
                raw,
                read_options=pacsv.ReadOptions(encoding=encoding, block_size=32 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(_arrow_names(headers), pa.string())),
            )
            for batch in reader:
                yield pa.Table.from_batches([batch]), min(raw.tell(), total), total

    return headers, batches


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


def _read_excel(path: Path) -> tuple[list[str], Wanted]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    headers = [_cell(h) or "" for h in next(rows, ())]
    total = max((ws.max_row or 1) - 1, 1)

    def batches(_wanted: Collection[str]) -> Batches:
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

    return headers, batches


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = {h: pa.array([_cell(r[i]) if i < len(r) else None for r in rows], pa.string())
            for i, h in enumerate(headers) if h}
    return pa.table(cols)


def _read_parquet(path: Path) -> tuple[list[str], Wanted]:
    pf = pq.ParquetFile(path)
    headers = list(pf.schema_arrow.names)
    total = pf.metadata.num_rows

    def batches(wanted: Collection[str]) -> Batches:
        done = 0
        for batch in pf.iter_batches(batch_size=500_000,
                                     columns=[h for h in headers if h in wanted]):
            cols = {n: pc.cast(batch.column(n), pa.string()) for n in batch.schema.names}
            done += batch.num_rows
            yield pa.table(cols), done, total

    return headers, batches


_READERS = {".csv": _read_csv, ".txt": _read_csv, ".xlsx": _read_excel, ".xlsm": _read_excel,
            ".parquet": _read_parquet}
#: The file name endings read (an upload of another kind is refused before it is saved).
SUFFIXES = frozenset(_READERS)
#: What the parsers raise on a file they cannot read: not the format its name says, damaged,
#: in another encoding, or with columns that are not text or numbers (BadZipFile, a missing
#: archive member, XML that does not parse, UnicodeDecodeError, any Arrow error ...).
_UNREADABLE = (ValueError, LookupError, OSError, EOFError, SyntaxError, zipfile.BadZipFile,
               csv.Error, pa.ArrowException)


def _unreadable(path: Path) -> UnsupportedFile:
    return UnsupportedFile("无法读取该文件：文件可能已损坏、内容与扩展名不符或含有无法识别的列。"
                           "只支持 CSV（UTF-8 或 GBK）、Excel（.xlsx）和 Parquet 文件",
                           detail={"file": path.name})


def open_source(path: Path) -> tuple[list[str], Wanted]:
    """Headers of a CSV, Excel or Parquet file, and the batches of text columns of the
    columns wanted; raises UnsupportedFile for another kind of file and for one that cannot
    be read, whether at the start or in a later batch."""
    read = _READERS.get(path.suffix.lower())
    if read is None:
        raise UnsupportedFile(detail={"file": path.name})
    try:
        headers, batches = read(path)
    except _UNREADABLE as exc:
        raise _unreadable(path) from exc
    return headers, lambda wanted: _guarded(path, batches, wanted)


def _guarded(path: Path, batches: Wanted, wanted: Collection[str]) -> Batches:
    try:
        yield from batches(wanted)
    except _UNREADABLE as exc:
        raise _unreadable(path) from exc
