"""The summary files written at import give exactly what the lines give, and follow a
re-import of their month."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from onetrip.org.models import Hospital
from onetrip.quality import analyses, engine, summaries
from onetrip.quality import service as quality_service
from onetrip.quality.rules import Check, DatasetKind, Thresholds, parse_period
from tests.quality import handmade

OCT = parse_period("2026-10")


def _everything(files: dict[DatasetKind, list[Path]]) -> dict[str, Any]:
    con = engine.open_engine(files[DatasetKind.prescriptions], files[DatasetKind.charges])
    try:
        use = engine.rational(con, OCT.start, OCT.end, Thresholds(),
                              privileges=[("D1", "special"), ("D3", "restricted")],
                              ddd=[("CRO", 2.0, 1.0)])
        return {
            "double_ten": asdict(engine.double_ten(con, OCT)),
            "income": [(m, c, n, asdict(i)) for m, c, n, i in
                       engine.income(con, parse_period("2026-09").start, OCT.end)],
            "shares": asdict(engine.drug_shares(con, OCT.start, OCT.end, ["长春西汀"])),
            "rational": asdict(use),
            "over_supply": engine.prescriptions_for(con, OCT.start, OCT.end, Thresholds(),
                                                    Check.over_supply),
        }
    finally:
        con.close()


def test_summaries_answer_exactly_what_the_lines_answer(tmp_path: Path) -> None:
    files = handmade.write_months(tmp_path)
    assert all(summaries.complete(k, f) for k, f in files.items())
    # The same line files without their summaries are read the old way.
    bare: dict[DatasetKind, list[Path]] = {k: [] for k in DatasetKind}
    for kind, paths in files.items():
        for f in paths:
            copy = tmp_path / "bare" / kind.value / f.parent.name / f.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, copy)
            bare[kind].append(copy)
    assert not summaries.complete(DatasetKind.prescriptions, bare[DatasetKind.prescriptions])
    fast, slow = _everything(files), _everything(bare)
    assert fast["rational"]["counts"] == slow["rational"]["counts"]
    assert fast["rational"]["indicators"] == pytest.approx(slow["rational"]["indicators"])
    assert _same(fast, slow)


def _same(a: Any, b: Any) -> bool:
    """Equal, floats to rounding (sums of sums add up in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert a == pytest.approx(b)
        return True
    assert a == b
    return True


def test_reimport_replaces_the_summaries_and_gc_keeps_the_current_ones(
        db: Session, handmade_hospital: Hospital, tmp_path: Path) -> None:
    h = handmade_hospital
    one = [r for r in handmade.RX if r[0] == "R3"]
    src = handmade.write_csv(tmp_path / "again.csv", handmade.RX_HEADER, one)
    row = quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                      period="2026-10", source=src)
    current = quality_service.analytics_dir() / row.file
    assert summaries.complete(DatasetKind.prescriptions, [current])
    use = analyses.rational(db, h, OCT)
    # Only R3 is left: one emergency prescription with two antibacterials.
    assert (use.counts["emergency"], use.counts["outpatient"]) == (1, 0)
    assert [f["prescription_id"] for f in use.findings[Check.multiple_antibacterials]] == ["R3"]
    rat = analyses.ratios(db, h, OCT)
    assert (rat.counts["prescriptions"], rat.counts["outpatient_visits"]) == (1, 0)
    removed = quality_service.collect_garbage(db, older_than=timedelta(seconds=-60))
    assert removed > 0
    assert current.exists() and summaries.complete(DatasetKind.prescriptions, [current])
    left = set(current.parent.glob("*.parquet"))
    assert left == {current, *(p for p in summaries.paths_of(current) if p.exists())}


def test_weeks_and_departments_still_read_the_lines(db: Session,
                                                    handmade_hospital: Hospital) -> None:
    # 2026-W41 is 5–11 October: R2 120, R3 80+20, R4 96, R5 20, R6 100 (MEM, the largest).
    ten, _ = analyses.double_ten(db, handmade_hospital, parse_period("2026-W41"))
    assert ten.by_amount[0].drug_code == "MEM" and ten.total_amount == 120 + 100 + 96 + 20 + 100
    use = analyses.rational(db, handmade_hospital, OCT, department="jz")
    assert use.counts["emergency"] == 1 and use.finding_counts[Check.no_privilege] == 1
