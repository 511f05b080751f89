"""`onetrip schedule generate|sweep`: the weekly templates become sessions on each clinic
day (BK-3 minute-precise slots, BK-9 booking ahead), and the sweeper ends holds that ran
out (BK-6). `generate` commits: each test has a hospital of its own. The sweeper works on
every hospital at once, so it runs as production runs it, in a process of its own, on a
database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.identity.models import AuditEvent
from onetrip.org import calendar
from onetrip.org.models import Hospital
from onetrip.org.rules import DayStatus
from onetrip.scheduling import templates
from onetrip.scheduling.models import Appointment, Schedule, Slot
from tests import racekit
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.test_templates import sheet

#: Four weeks around National Day 2026: working days, the statutory holiday, weekends.
START, DAYS = date(2026, 9, 28), 21
#: What the sheet of ``_hospital`` holds: (weekday, session) -> capacity.
TEMPLATES = {(1, "am"): 20, (3, "pm"): 12}


def _hospital() -> str:
    """A new hospital whose one doctor has Monday morning and Wednesday afternoon templates."""
    with session_scope() as db:
        h = make_hospital(db, code=f"gen{uuid.uuid4().hex[:8]}")
        dept = make_department(db, h)
        doctor = make_practitioner(db, h, dept)
        templates.import_sheet(db, hospital=h, content=sheet(
            [dept.name, doctor.code, doctor.name, "专家门诊", "", "20", "12/10"]))
        return h.code


def _generate(code: str, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["schedule", "generate", "--hospital", code, *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_generate_creates_the_templates_sessions_on_clinic_days_only(cli_engine: Engine) -> None:
    code = _hospital()
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        days = calendar.clinic_days(db, h, START, START + timedelta(days=DAYS - 1))
    open_days = [d.day for d in days if d.status is DayStatus.clinic]
    expected = {(day, session, capacity) for day in open_days
                for (weekday, session), capacity in TEMPLATES.items()
                if day.isoweekday() == weekday}
    assert len(expected) >= 2 and date(2026, 10, 5) not in open_days  # a holiday Monday

    lines = _generate(code, "--from", START.isoformat(), "--days", str(DAYS))
    assert lines[0] == f"created {len(expected)} sessions, 0 already existed"
    # Skipped: the days that are no clinic days, and a Saturday worked in lieu of the
    # National Day holiday (调休), for which there is no Saturday template.
    worked_saturday = date(2026, 10, 10)
    assert lines[1:] == [f"  skipped {d.day.isoformat()}: {d.reason}"
                         + ("：没有周六的出诊模板，未生成出诊，请另行排班"
                            if d.day == worked_saturday else "")
                         for d in days if d.status is not DayStatus.clinic
                         or d.day == worked_saturday]
    assert any("国庆节" in line for line in lines[1:])
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        made = db.scalars(select(Schedule).where(Schedule.hospital_id == h.id)).all()
        assert {(s.day, s.session, s.capacity) for s in made} == expected
        slots = db.scalar(select(func.count(Slot.id)).join(Schedule).where(
            Schedule.hospital_id == h.id))
        assert slots == sum(capacity for _day, _session, capacity in expected)
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "schedule.generate")
                           .order_by(AuditEvent.id.desc()).limit(1)).one()
        assert event.actor.endswith("onetrip-cli") and event.detail["hospital"] == code
        assert event.detail["created"] == len(expected)


def test_generating_again_changes_nothing(cli_engine: Engine) -> None:
    code = _hospital()
    first = _generate(code, "--from", START.isoformat(), "--days", str(DAYS))
    created = int(first[0].split()[1])
    again = _generate(code, "--from", START.isoformat(), "--days", str(DAYS))
    assert again[0] == f"created 0 sessions, {created} already existed"
    assert again[1:] == first[1:]
    with session_scope(write=False) as db:
        assert db.scalar(select(func.count(Schedule.id)).join(Hospital).where(
            Hospital.code == code)) == created


def test_generate_refuses_a_span_beyond_92_days_and_writes_nothing(cli_engine: Engine) -> None:
    code = _hospital()
    for days in ("0", "93"):
        result = CliRunner().invoke(app, ["schedule", "generate", "--hospital", code,
                                          "--from", START.isoformat(), "--days", days])
        assert result.exit_code == 2 and "--days" in result.output
    with session_scope(write=False) as db:
        assert db.scalar(select(func.count(Schedule.id)).join(Hospital).where(
            Hospital.code == code)) == 0


def _sweep(url: str) -> str:
    """`onetrip schedule sweep` with no options, in its own process against ``url``."""
    done = subprocess.run(
        [sys.executable, "-c", "from onetrip.cli import app; app()", "schedule", "sweep"],
        env={**os.environ, "ONETRIP_DATABASE_URL": url}, capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_sweep_runs_once_by_default_ending_a_hold_that_ran_out(race_engine: Engine) -> None:
    seed = racekit.seed(race_engine, patients=1)
    with Session(race_engine) as db:
        _clerk, held = racekit.hold_run_out(db, seed)
        held_id, slot_id = held.id, held.slot_id
        db.commit()
    url = str(race_engine.info["url"])
    assert _sweep(url) == "holds 1, waitlist offers 0, rebooking offers 0, no-shows 0"
    with Session(race_engine) as db:
        assert db.get_one(Appointment, held_id).status == "expired"
        assert db.get_one(Slot, slot_id).status == "free"
    # Once, not every N seconds: a pass with nothing to do still reports, then returns.
    assert _sweep(url) == "holds 0, waitlist offers 0, rebooking offers 0, no-shows 0"
