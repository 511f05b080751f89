"""A clean CSV is written by DuckDB's typed reader in one statement (the typed path); any
other file, or a CSV with a bad row, goes batch by batch. Both must store the same rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from onetrip.quality import importing
from onetrip.quality.readers import UnsupportedFile
from onetrip.quality.rules import DatasetKind, parse_period
from tests.quality import handmade

OCT = parse_period("2026-10")


def _messy_rows() -> list[tuple[object, ...]]:
    """Valid rows the way HIS exports write them: padded text (also with the ideographic
    space), Chinese aliases for the codes, blank optional fields, times with and without seconds."""
    rows = [list(r) for r in handmade.month_rows(handmade.RX, "2026-10")]
    rows[0][3] = f"  {rows[0][3]}\u3000"
    rows[1][5] = f"\u00a0{rows[1][5]} "
    rows[2][16] = rows[2][17] = rows[2][18] = ""
    rows[3][1] = f"{rows[3][1]}:00"
    return [tuple(r) for r in rows]


def _stored(out: Path, written: importing.Written) -> list[tuple[object, ...]]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{out / written.file}') "
                      "ORDER BY ALL").fetchall()


def _import(src: Path, out: Path, **kw: object) -> importing.Written:
    return importing.write_dataset(src, kind=DatasetKind.prescriptions, hospital_code="h",
                                   period=OCT, analytics_dir=out, **kw)  # type: ignore[arg-type]


def test_qa1_clean_csv_takes_the_typed_path_and_stores_what_the_batch_path_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = handmade.write_csv(tmp_path / "rx.csv", handmade.RX_HEADER, _messy_rows())
    fast_progress: list[tuple[int, int]] = []
    with monkeypatch.context() as m:
        m.setattr(importing, "_stage_batches", _unexpected)
        fast = _import(src, tmp_path / "fast", progress=lambda d, t: fast_progress.append((d, t)))
    with monkeypatch.context() as m:
        m.setattr(importing, "_write_typed", lambda *a, **k: False)
        slow = _import(src, tmp_path / "slow")
    assert fast.rows == slow.rows == len(_messy_rows())
    assert _stored(tmp_path / "fast", fast) == _stored(tmp_path / "slow", slow)
    names = [r[0] for r in duckdb.sql(
        f"SELECT DISTINCT department_name FROM read_parquet('{tmp_path / 'fast' / fast.file}')"
    ).fetchall()]
    assert all(n == n.strip(" \u3000\u00a0") for n in names)
    size = src.stat().st_size
    assert fast_progress[-1] == (size, size)


def _unexpected(*args: object, **kwargs: object) -> None:
    raise AssertionError("a clean CSV must not need the batch path")


@pytest.mark.parametrize("value", ["两盒", "1e999", "-1", "1e308", "1000000001"])
def test_qa1_a_bad_number_still_gets_its_row_number_after_the_typed_path_gives_up(
        tmp_path: Path, value: str) -> None:
    rows = [list(r) for r in _messy_rows()]
    rows[4][14] = value  # 数量 on file line 6
    src = handmade.write_csv(tmp_path / "bad.csv", handmade.RX_HEADER, [tuple(r) for r in rows])
    with pytest.raises(importing.ImportRejected) as err:
        _import(src, tmp_path / "out")
    assert [(e["row"], e["field"]) for e in err.value.detail["errors"]] == [(6, "数量")]
    assert not list((tmp_path / "out").glob("**/*.parquet"))


def test_qa1_an_amount_past_any_real_charge_is_refused_with_its_bound(tmp_path: Path) -> None:
    """A refund is negative, but no line moves a billion yuan: 1e308 summed to infinity."""
    rows = [list(r) for r in handmade.month_rows(handmade.CHARGES, "2026-10")]
    rows[2][6] = "-1e300"  # 金额 on file line 4
    src = handmade.write_csv(tmp_path / "c.csv", handmade.CHARGE_HEADER, [tuple(r) for r in rows])
    with pytest.raises(importing.ImportRejected) as err:
        importing.write_dataset(src, kind=DatasetKind.charges, hospital_code="h", period=OCT,
                                analytics_dir=tmp_path / "out")
    assert err.value.detail["errors"] == [
        {"row": 4, "field": "金额", "message": "应为数字，绝对值不超过10亿"}]


def test_qa1_gbk_csv_imports_through_the_batch_path(tmp_path: Path) -> None:
    utf8 = handmade.write_csv(tmp_path / "rx.csv", handmade.RX_HEADER, _messy_rows())
    gbk = tmp_path / "rx-gbk.csv"
    gbk.write_bytes(utf8.read_text(encoding="utf-8").encode("gbk", errors="replace"))
    written = _import(gbk, tmp_path / "out")
    assert written.rows == len(_messy_rows())


def test_qa1_a_file_of_another_kind_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "rx.docx"
    src.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFile) as err:
        _import(src, tmp_path / "out")
    assert err.value.code == "quality_unsupported_file" and "CSV" in err.value.text
