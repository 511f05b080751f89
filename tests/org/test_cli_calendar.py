"""`onetrip calendar show|import`: the working calendar from the command line, which a
region admin uses to load a year's official schedule before the statutory calendar knows
it (BK-3 clinic days; BK-6 stop-clinic rulings). The commands commit: each test has a
hospital or region of its own."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.org import calendar
from onetrip.org.models import CalendarOverride, Hospital
from onetrip.org.rules import WEEKDAY_LABELS
from tests.factories import make_hospital, make_region


def _hospital(region_code: str | None = None) -> str:
    """A new hospital open Monday to Friday, in a new region (coded ``region_code``)."""
    with session_scope() as db:
        region = make_region(db, code=region_code) if region_code else None
        h = make_hospital(db, region=region, code=f"cal{uuid.uuid4().hex[:8]}",
                          clinic_weekdays=[1, 2, 3, 4, 5])
        return h.code


def _show(code: str, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["calendar", "show", "--hospital", code, *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def _overrides(code: str) -> list[tuple[date, str, str, str]]:
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        return [(o.day, o.kind, o.name, o.source)
                for o in calendar.list_overrides(db, hospital=h)]


def test_show_prints_each_dates_ruling_and_reason(cli_engine: Engine) -> None:
    code = _hospital()
    lines = _show(code, "--from", "2026-09-30", "--to", "2026-10-02")
    assert [line.split()[0] for line in lines] == ["2026-09-30", "2026-10-01", "2026-10-02"]
    wednesday, national_day, _ = (line.split(maxsplit=2) for line in lines)
    assert wednesday[1:] == ["clinic", f"{WEEKDAY_LABELS[2]}，本院门诊日"]
    assert national_day[1] == "closed" and "国庆节" in national_day[2]
    assert len(_show(code, "--from", "2026-09-30")) == 1  # no --to: that one date


def test_import_for_a_hospital_rules_its_dates_and_a_second_import_replaces(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    path = tmp_path / "院历.csv"
    path.write_text("date,kind,name\n2026-09-30,停诊,院庆\n2026-10-10,休,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", "--hospital", code, str(path)])
    assert result.exit_code == 0 and "imported 2 dates" in result.output, result.output
    assert _overrides(code) == [(date(2026, 9, 30), "closed", "院庆", "file:院历.csv"),
                                (date(2026, 10, 10), "holiday", "", "file:院历.csv")]
    assert _show(code, "--from", "2026-09-30")[0].split() == [
        "2026-09-30", "closed", "本院设定停诊（院庆）"]

    path.write_text("2026-09-30,开诊,义诊\n", encoding="utf-8")
    again = CliRunner().invoke(app, ["calendar", "import", "--hospital", code, str(path)])
    assert again.exit_code == 0 and "imported 1 dates" in again.output
    assert _overrides(code)[0] == (date(2026, 9, 30), "open", "义诊", "file:院历.csv")
    assert len(_overrides(code)) == 2


def test_import_for_a_region_rules_a_year_the_statutory_calendar_lacks(
        cli_engine: Engine, tmp_path: Path) -> None:
    region = f"rg{uuid.uuid4().hex[:8]}"
    inside, outside = _hospital(region), _hospital()
    assert _show(inside, "--from", "2027-01-01")[0].split()[1] == "unknown"
    path = tmp_path / "2027.csv"
    path.write_text("\ufeff2027-01-01,法定节假日,元旦\n2027-01-04,调休上班,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", "--region", region, str(path)])
    assert result.exit_code == 0 and "imported 2 dates" in result.output, result.output
    assert [line.split()[:2] for line in _show(inside, "--from", "2027-01-01")] == [
        ["2027-01-01", "closed"]]
    assert "区域设定节假日（元旦）" in _show(inside, "--from", "2027-01-01")[0]
    assert _show(outside, "--from", "2027-01-01")[0].split()[1] == "unknown"
    with session_scope(write=False) as db:
        rows = db.scalars(select(CalendarOverride).join(
            Hospital, Hospital.region_id == CalendarOverride.region_id)
            .where(Hospital.code == inside)).all()
        assert sorted((r.day, r.kind, r.hospital_id) for r in rows) == [
            (date(2027, 1, 1), "holiday", None), (date(2027, 1, 4), "workday", None)]


def test_a_file_with_any_bad_line_is_reported_line_by_line_and_imports_nothing(
        cli_engine: Engine, tmp_path: Path) -> None:
    code = _hospital()
    path = tmp_path / "bad.csv"
    path.write_text("2026-11-02,停诊,院庆\n2026-11-31,休,\n2026-11-03,请假,\n",
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", "--hospital", code, str(path)])
    assert result.exit_code == 2 and "calendar_import_invalid" in result.output
    assert "  line 2: " in result.output and "  line 3: 未知类型：请假" in result.output
    assert "line 1:" not in result.output
    assert _overrides(code) == []


@pytest.mark.parametrize("where", [[], ["--hospital", "x", "--region", "y"]])
def test_import_needs_exactly_one_of_hospital_or_region(
        cli_engine: Engine, tmp_path: Path, where: list[str]) -> None:
    path = tmp_path / "one.csv"
    path.write_text("2026-11-02,停诊,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", *where, str(path)])
    assert result.exit_code == 2 and "exactly one of --hospital or --region" in result.output


def test_import_names_an_unknown_region(cli_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("2026-11-02,停诊,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", "--region", "nosuch", str(path)])
    assert result.exit_code == 2 and "unknown region nosuch" in result.output


def test_import_names_an_unknown_hospital(cli_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("2026-11-02,停诊,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calendar", "import", "--hospital", "nosuch", str(path)])
    assert result.exit_code == 2 and "hospital_not_found" in result.output


def test_show_names_an_unknown_hospital(cli_engine: Engine) -> None:
    result = CliRunner().invoke(app, ["calendar", "show", "--hospital", "nosuch",
                                      "--from", "2026-11-02"])
    assert result.exit_code == 2 and "hospital_not_found" in result.output
