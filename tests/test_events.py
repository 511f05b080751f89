"""Domain events travel with their transaction (item 11): what it committed is delivered,
what it rolled back is not. A savepoint rolled back undoes only the events published inside
it: the bookings made before it in the same transaction still send their messages (the
exams' batch books each patient's plan in a savepoint and goes on when one is refused)."""

from __future__ import annotations

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
