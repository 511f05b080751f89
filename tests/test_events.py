"""Domain events travel with their transaction (item 11): what it committed is delivered,
what it rolled back is not. A savepoint rolled back undoes only the events published inside
it: the bookings made before it in the same transaction still send their messages (the
exams' batch books each patient's plan in a savepoint and goes on when one is refused)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from onetrip import events


@dataclass(frozen=True)
class Noted(events.Event):
    name: str


delivered: list[str] = []
in_transaction: list[str] = []


@events.after_commit(Noted)
def _deliver(ev: Noted) -> None:
    delivered.append(ev.name)


@events.on_commit_many(Noted)
def _write(db: Session, evs: list[Noted]) -> None:
    in_transaction.extend(ev.name for ev in evs)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    delivered.clear()
    in_transaction.clear()


def test_a_rolled_back_savepoint_drops_only_its_own_events(db: Session) -> None:
    events.publish(db, Noted("booked first"))
    try:
        with db.begin_nested():
            events.publish(db, Noted("refused inside"))
            raise LookupError("the next patient's plan is refused")
    except LookupError:
        pass
    with db.begin_nested():
        events.publish(db, Noted("booked in a savepoint kept"))
    events.publish(db, Noted("booked last"))
    db.commit()
    kept = ["booked first", "booked in a savepoint kept", "booked last"]
    assert in_transaction == kept and delivered == kept


def test_a_nested_savepoint_rolled_back_keeps_its_parents_events(db: Session) -> None:
    with db.begin_nested():
        events.publish(db, Noted("outer savepoint"))
        try:
            with db.begin_nested():
                events.publish(db, Noted("inner savepoint"))
                raise LookupError
        except LookupError:
            pass
    db.commit()
    assert delivered == ["outer savepoint"]


def test_a_rolled_back_transaction_emits_nothing(db: Session) -> None:
    events.publish(db, Noted("undone"))
    with db.begin_nested():
        events.publish(db, Noted("undone too"))
    db.rollback()
    db.commit()
    assert delivered == [] and in_transaction == []


_BOOK_IN_A_BARE_PROCESS = """
import sys
from datetime import timedelta
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from onetrip.db import get_engine
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import booking, service
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import make_department, make_hospital, make_patient, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN

with get_engine().connect() as conn:
    outer = conn.begin()
    db = Session(bind=conn, join_transaction_mode="create_savepoint")
    h = make_hospital(db, clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    dept = make_department(db, h)
    doc = make_practitioner(db, h, dept)
    schedule = service.create_schedule(db, hospital=h, department=dept, day=DAY,
                                       session=SessionOfDay.am, practitioner=doc,
                                       capacity=10, slot_minutes=6, now=CREATED)
    patient = make_patient(db)
    window = Principal(role=Role.window, hospital_id=h.id, label="窗口")
    notify_loaded = "onetrip.notify" in sys.modules
    appt = booking.book(db, principal=window, patient_id=patient.id, channel=Channel.window,
                        schedule_id=schedule.id, now=OPEN)
    db.commit()
    print(notify_loaded, db.scalar(text(
        "SELECT count(*) FROM notification WHERE appointment_id = :a"), {"a": appt.id}))
    outer.rollback()
"""


def test_a_process_that_never_imported_a_subscriber_still_delivers_to_it(
        database_url: str) -> None:
    """A booking made by a process that imported only the booking engine (a script, a
    benchmark's worker) writes its messages as the web server's would: the subscribers of
    every domain are loaded before a transaction's events are dispatched."""
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", _BOOK_IN_A_BARE_PROCESS], capture_output=True, text=True,
        cwd=Path(__file__).parent.parent, env={**os.environ, "ONETRIP_DATABASE_URL": database_url},
        timeout=120, check=True)
    notify_loaded, messages = result.stdout.split()
    assert notify_loaded == "False"  # the process had not imported the notify domain
    assert int(messages) == 3  # the confirmation and the two reminders


def test_every_module_that_registers_handlers_is_loaded_before_dispatch() -> None:
    import re
    from pathlib import Path

    import onetrip

    root = Path(onetrip.__file__).parent
    registering = {
        "onetrip." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in root.rglob("*.py")
        if re.search(r"^@(events\.)?(on_commit|on_commit_many|after_commit)\(", path.read_text(),
                     re.MULTILINE)}
    assert registering == set(events.SUBSCRIBER_MODULES)
