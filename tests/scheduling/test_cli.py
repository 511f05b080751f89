"""`onetrip schedule import|export`: the weekly templates as the hospital's Excel sheet,
from the command line (BK-1). The commands commit: each test has a hospital of its own."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.identity.models import AuditEvent
from onetrip.org.models import Hospital
from onetrip.scheduling import templates
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.test_templates import sheet


def _hospital() -> tuple[str, list[object]]:
    """A new hospital's code and a good sheet row for its one doctor."""
    with session_scope() as db:
        h = make_hospital(db, code=f"cli{uuid.uuid4().hex[:8]}")
        dept = make_department(db, h)
        doctor = make_practitioner(db, h, dept)
        return h.code, [dept.name, doctor.code, doctor.name, "专家门诊", "", "20", "12/10"]


def test_import_writes_the_sheet_audited_and_export_gives_it_back(
        cli_engine: Engine, tmp_path: Path) -> None:
    code, row = _hospital()
    path = tmp_path / "排班.xlsx"
    path.write_bytes(sheet(row))
    result = CliRunner().invoke(app, ["schedule", "import", "--hospital", code, str(path)])
    assert result.exit_code == 0 and "imported 2 weekly sessions" in result.output, result.output
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        assert {(t.weekday, t.capacity) for t in templates.templates_of(db, h)} == {
            (1, 20), (3, 12)}
        event = db.scalars(select(AuditEvent).where(
            AuditEvent.action == templates.IMPORT_ACTION).order_by(AuditEvent.id.desc())
            .limit(1)).one()
        assert event.actor.endswith("onetrip-cli") and event.detail["hospital"] == code
        assert templates.imported_sessions(db, h, event.id) == 2

    out = tmp_path / "out.xlsx"
    exported = CliRunner().invoke(app, ["schedule", "export", "--hospital", code, str(out)])
    assert exported.exit_code == 0, exported.output
    again = CliRunner().invoke(app, ["schedule", "import", "--hospital", code, str(out)])
    assert again.exit_code == 0 and "imported 2 weekly sessions" in again.output


def test_a_bad_sheet_is_reported_row_by_row_and_imports_nothing(
        cli_engine: Engine, tmp_path: Path) -> None:
    code, row = _hospital()
    path = tmp_path / "bad.xlsx"
    path.write_bytes(sheet(row, ["不存在科", "nobody", "", "", "", "二十", ""]))
    result = CliRunner().invoke(app, ["schedule", "import", "--hospital", code, str(path)])
    assert result.exit_code == 2 and "row 3:" in result.output and "row 2:" not in result.output
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        assert templates.templates_of(db, h) == []


def test_an_unknown_hospital_is_named_not_a_traceback(cli_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "排班.xlsx"
    path.write_bytes(sheet(["内科", "d1", "某医生", "专家门诊", "", "20", ""]))
    for args in (["import", "--hospital", "nosuch", str(path)],
                 ["export", "--hospital", "nosuch", str(tmp_path / "out.xlsx")],
                 ["generate", "--hospital", "nosuch", "--from", "2026-12-14"]):
        result = CliRunner().invoke(app, ["schedule", *args])
        assert result.exit_code == 2 and "hospital_not_found" in result.output, args
    assert not (tmp_path / "out.xlsx").exists()
