"""`onetrip quality import|report|gc`: a month of HIS exports imported all or nothing, the
headline indicators (QA-1 双十, QA-2 药占比/耗占比, QA-3 合理用药; RE-1 the monthly report
as a workbook) and the clean-up of Parquet files no import names. The commands commit:
each test has a hospital of its own; the expected figures are worked out by hand in
tests/quality/handmade.py and tests/quality/test_engine.py."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.org.models import Hospital
from onetrip.quality import report, summaries
from onetrip.quality import service as quality_service
from onetrip.quality.models import DataImport
from onetrip.quality.rules import DatasetKind
from tests.factories import make_hospital
from tests.quality import handmade

#: 药占比 of the hand-made October: drugs 510 less 20 of herbal pieces, of income 1860.
DRUG_COST_RATIO = (510 - 20) / 1860


def _hospital() -> str:
    with session_scope() as db:
        return make_hospital(db, code=f"qa{uuid.uuid4().hex[:8]}").code


def _csv(tmp: Path, kind: DatasetKind, month: str, name: str = "") -> Path:
    header, rows = ((handmade.RX_HEADER, handmade.RX) if kind is DatasetKind.prescriptions
                    else (handmade.CHARGE_HEADER, handmade.CHARGES))
    return handmade.write_csv(tmp / (name or f"{kind.value}-{month}.csv"), header,
                              handmade.month_rows(rows, month))


def _import(code: str, kind: DatasetKind, month: str, path: Path, *more: str
            ) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["quality", "import", str(path), "--kind", kind.value,
                                      "--hospital", code, "--period", month, *more])
    return result.exit_code, result.output


def _imports(code: str) -> list[DataImport]:
    with session_scope(write=False) as db:
        return list(db.scalars(select(DataImport).join(Hospital).where(Hospital.code == code)
                               .order_by(DataImport.kind)))


def _files(code: str) -> set[Path]:
    return {p for p in quality_service.analytics_dir().glob(f"*/{code}/**/*") if p.is_file()}


def test_import_stores_the_month_and_a_second_import_replaces_it(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    src = _csv(tmp_path, DatasetKind.prescriptions, "2026-10")
    rows = len(handmade.month_rows(handmade.RX, "2026-10"))
    status, output = _import(code, DatasetKind.prescriptions, "2026-10", src)
    assert status == 0, output
    assert f"imported {rows} rows of prescriptions for {code} 2026-10" in output
    assert "替换" not in output
    [first] = _imports(code)
    assert (first.rows, first.version, first.imported_by, first.source_name) == (
        rows, 1, "cli", src.name)
    assert (quality_service.analytics_dir() / first.file).exists()

    one = [r for r in handmade.RX if r[0] == "R1"]
    again = handmade.write_csv(tmp_path / "again.csv", handmade.RX_HEADER, one)
    status, output = _import(code, DatasetKind.prescriptions, "2026-10", again)
    assert status == 0 and "（替换了此前的导入）" in output, output
    [second] = _imports(code)
    assert (second.rows, second.version) == (len(one), 2) and second.file != first.file


def test_import_takes_a_column_mapping_for_another_his(cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    header = ["RXNO" if c == "处方号" else c for c in handmade.RX_HEADER]
    src = handmade.write_csv(tmp_path / "his.csv", header,
                             handmade.month_rows(handmade.RX, "2026-10"))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"prescription_id": "RXNO"}), encoding="utf-8")
    status, output = _import(code, DatasetKind.prescriptions, "2026-10", src,
                             "--mapping", str(mapping))
    assert status == 0, output
    assert [(i.mapping, i.rows) for i in _imports(code)] == [
        ({"prescription_id": "RXNO"}, len(handmade.month_rows(handmade.RX, "2026-10")))]


@pytest.mark.parametrize("text", ['{"prescription_id": ', "[1]", '{"prescription_id": 5}'])
def test_a_mapping_that_is_no_json_object_of_texts_is_refused(
        cli_engine: Engine, tmp_path: Path, text: str) -> None:
    code = _hospital()
    mapping = tmp_path / "mapping.json"
    mapping.write_text(text, encoding="utf-8")
    status, output = _import(code, DatasetKind.prescriptions, "2026-10",
                             _csv(tmp_path, DatasetKind.prescriptions, "2026-10"),
                             "--mapping", str(mapping))
    assert status == 2 and "quality_invalid_mapping" in output
    assert _imports(code) == [] and _files(code) == set()


def test_a_bad_file_is_reported_row_by_row_and_nothing_is_imported(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    bad = [list(r) for r in handmade.month_rows(handmade.RX, "2026-10")]
    bad[2][14] = "两盒"  # 数量 on file line 4
    src = handmade.write_csv(tmp_path / "bad.csv", handmade.RX_HEADER, [tuple(r) for r in bad])
    before = _files(code)
    status, output = _import(code, DatasetKind.prescriptions, "2026-10", src)
    assert status == 2 and "第4行 数量：" in output, output
    few = handmade.write_csv(tmp_path / "few.csv", ["处方号", "通用名"], [("R1", "阿莫西林")])
    status, output = _import(code, DatasetKind.prescriptions, "2026-10", few)
    assert status == 2 and "缺少：" in output and "开方时间(prescribed_at)" in output
    status, output = _import(code, DatasetKind.prescriptions, "2026-Q4",
                             _csv(tmp_path, DatasetKind.prescriptions, "2026-10"))
    assert status == 2 and "quality_import_needs_month" in output
    assert _imports(code) == []
    assert _files(code) == before


def _loaded(tmp: Path) -> str:
    """A hospital holding the hand-made September and October, both kinds."""
    code = _hospital()
    for month in ("2026-09", "2026-10"):
        for kind in DatasetKind:
            status, output = _import(code, kind, month, _csv(tmp, kind, month))
            assert status == 0, output
    return code


def _report(code: str, period: str, *more: str) -> list[str]:
    result = CliRunner().invoke(app, ["quality", "report", "--period", period,
                                      "--hospital", code, *more])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_report_prints_the_headline_indicators_and_writes_the_workbook(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _loaded(tmp_path)
    names = [name for _key, name, *_ in report.indicator_rows(quality_service.thresholds())]
    lines = _report(code, "2026-10")
    assert [line.split(": ")[0] for line in lines] == names
    shown = dict(line.split(": ", 1) for line in lines)
    assert shown["药占比（不含中药饮片）"].startswith(f"{DRUG_COST_RATIO:.2%}  (阈值 ")
    assert shown["急诊抗菌药物处方比例"].startswith("100.00%")  # R3 of R3
    assert shown["门诊抗菌药物处方比例"].startswith("50.00%")  # R1 R5 R6 of six
    # No data in November or December: the quarter is October.
    assert _report(code, "2026-Q4") == lines

    xlsx = tmp_path / "report.xlsx"
    with_book = _report(code, "2026-10", "--xlsx", str(xlsx))
    assert with_book == [*lines, f"workbook written to {xlsx}"]
    overview = {row[0]: row[1] for row in load_workbook(xlsx)["概览"].iter_rows(
        min_row=5, values_only=True)}
    assert overview["药占比（不含中药饮片）"] == pytest.approx(DRUG_COST_RATIO)


def test_report_refuses_a_period_it_cannot_read_and_writes_no_workbook(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    xlsx = tmp_path / "report.xlsx"
    result = CliRunner().invoke(app, ["quality", "report", "--period", "2026-13",
                                      "--hospital", code, "--xlsx", str(xlsx)])
    assert result.exit_code == 2 and "quality_invalid_period" in result.output
    assert not xlsx.exists()


def test_report_shows_a_threshold_in_the_unit_of_its_value(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _loaded(tmp_path)
    shown = dict(line.split(": ", 1) for line in _report(code, "2026-10"))
    target = quality_service.thresholds().drug_cost_ratio
    assert shown["药占比（不含中药饮片）"] == f"{DRUG_COST_RATIO:.2%}  (阈值 {target:.2%})"


def test_gc_deletes_old_files_no_import_names_and_keeps_the_rest(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    src = _csv(tmp_path, DatasetKind.prescriptions, "2026-10")
    for _ in range(2):  # the second import replaces the first, whose file is then unnamed
        status, output = _import(code, DatasetKind.prescriptions, "2026-10", src)
        assert status == 0, output
    base = quality_service.analytics_dir()
    [current] = _imports(code)
    folder = (base / current.file).parent
    named = {base / current.file, *summaries.paths_of(base / current.file)}
    replaced = [p for p in folder.glob("*.parquet") if p not in named]
    kept = [p for p in folder.glob("*.parquet") if p in named]
    assert replaced and kept
    an_hour_ago = time.time() - 2 * 3600
    for path in folder.glob("*.parquet"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    writing = folder / f"{uuid.uuid4().hex}.parquet"  # an import still running
    shutil.copy(base / current.file, writing)

    result = CliRunner().invoke(app, ["quality", "gc"])
    assert result.exit_code == 0, result.output
    removed = int(result.output.split()[1])
    assert removed >= len(replaced)
    assert not any(p.exists() for p in replaced)
    assert all(p.exists() for p in kept) and writing.exists()
    again = CliRunner().invoke(app, ["quality", "gc"])
    assert again.exit_code == 0 and again.output.strip() == "removed 0 files"
