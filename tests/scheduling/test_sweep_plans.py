"""The sweeper's reads stay as small as the active appointments, whatever the history.

The sweeper runs every 30 s for years. Each pass must reach appointments only through the
partial indexes of active ones (BK-3) and sessions only by their key: a read of every past
session or appointment grows with the hospital's history. Checked on the plans the
database would use for a statement prepared once and run again (PostgreSQL: the generic
plan, where a bound status value no longer matches a partial index).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from psycopg.sql import Literal
from sqlalchemy import event
from sqlalchemy.orm import Session

from onetrip.scheduling import booking, sweep
from onetrip.scheduling.rules import Channel
from tests.scheduling.conftest import OPEN, Clinic

_PARAM = re.compile(r"%\((\w+)\)s")


def _statements(db: Session, clinic: Clinic) -> list[tuple[str, Any]]:
    patient, _ = clinic.patient(db)
    booking.book(db, principal=clinic.window, patient_id=patient.id,
                 schedule_id=clinic.schedule.id, channel=Channel.window,
                 now=clinic.schedule.start_at - timedelta(hours=1))
    held, principal = clinic.patient(db)
    booking.book(db, principal=principal, patient_id=held.id, schedule_id=clinic.schedule.id,
                 channel=Channel.app, now=OPEN, hold=True)
    seen: list[tuple[str, Any]] = []
    conn = db.connection()

    def keep(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if re.search(r"\b(appointment|schedule)\b", statement):
            seen.append((statement, params))

    event.listen(conn, "before_cursor_execute", keep)
    try:
        report = sweep.sweep(db, now=clinic.schedule.end_at + timedelta(days=1))
    finally:
        event.remove(conn, "before_cursor_execute", keep)
    assert report.noshows >= 1 and report.holds_expired >= 1  # every statement ran
    return seen


def _sqlite_plan(db: Session, statement: str, params: Any) -> list[str]:
    return [row[-1] for row in db.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + statement, params)]


def _postgres_generic_plan(db: Session, statement: str, params: dict[str, Any]) -> list[str]:
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    conn = db.connection()
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    conn.exec_driver_sql("PREPARE sweep_plan AS " + _PARAM.sub(number, statement))
    try:
        raw = conn.connection.driver_connection
        args = ", ".join(Literal(params[n]).as_string(raw) for n in names)
        return [row[0] for row in conn.exec_driver_sql(
            f"EXPLAIN EXECUTE sweep_plan({args})" if names else "EXPLAIN EXECUTE sweep_plan")]
    finally:
        conn.exec_driver_sql("DEALLOCATE sweep_plan")


_FULL_SCAN = re.compile(r"Seq Scan on (\w+)|\bSCAN (\w+)$")
_BY_INDEX = re.compile(r"Scan using (\w+) on|Bitmap Index Scan on (\w+)|"
                       r"(?:SCAN|SEARCH) \w+ USING (?:COVERING )?INDEX (\w+)|"
                       r"(?:SCAN|SEARCH) (\w+) USING INTEGER PRIMARY KEY")


def _access(plan: list[str]) -> tuple[set[str], set[str]]:
    """The tables read whole, and the indexes read (SQLite's rowid: ``pk_<table>``)."""
    full = {next(g for g in m.groups() if g) for line in plan
            if (m := _FULL_SCAN.search(line.strip()))}
    used = set()
    for line in plan:
        if m := _BY_INDEX.search(line):
            name = next(g for g in m.groups() if g)
            used.add(f"pk_{name}" if m.group(4) else name)
    return full, used


def test_sweeper_reads_only_active_appointments_and_sessions_by_key(
        db: Session, clinic: Clinic) -> None:
    statements = _statements(db, clinic)
    postgres = db.get_bind().dialect.name == "postgresql"
    used: set[str] = set()
    for statement, params in statements:
        with db.begin_nested():
            plan = (_postgres_generic_plan(db, statement, params) if postgres
                    else _sqlite_plan(db, statement, params))
        full, indexes = _access(plan)
        assert not full & {"appointment", "schedule"}, (statement, plan)
        assert all(i.startswith("uq_appointment_active") or i == "pk_schedule"
                   for i in indexes if "appointment" in i or "schedule" in i), (statement, plan)
        used |= indexes
    # the hold expiry and the no-shows go through the active appointments; their sessions
    # are looked up by key
    assert any(i.startswith("uq_appointment_active") for i in used)
    assert "pk_schedule" in used
