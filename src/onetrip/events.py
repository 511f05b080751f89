"""Domain events, delivered with the transaction that caused them.

``publish(db, event)`` queues an event on the session. Handlers registered with
``on_commit`` run inside the same transaction just before it commits (so an outbox row is
written atomically with the change); ``on_commit_many`` handlers do the same once for all
the events of their type in the transaction (a batch of bookings queues its messages with
one insert); handlers registered with ``after_commit`` run once the commit has succeeded.
A rollback discards the queue: a rolled-back change emits nothing. A savepoint is part of
its transaction: its events are delivered with the transaction's commit, and rolling it back
discards only the events published inside it (the exams' batch books each patient's plan in
a savepoint and goes on when one is refused; the bookings before it still send their
messages). SQLAlchemy fires its commit and rollback events for savepoints too.

Every domain's subscribers (``SUBSCRIBER_MODULES``) are loaded before a transaction's events
are first dispatched, so a process that imported only the domain publishing an event (a
script, a benchmark's worker) delivers it as the web server does.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_KEY = "onetrip.pending_events"
_DISPATCHED = "onetrip.dispatched_in_tx"  # how many of the queued events ran in the tx
_MARKS = "onetrip.savepoint_marks"  # savepoint → how many events were queued when it began
#: The modules that register handlers (each domain's ``subscribers``).
SUBSCRIBER_MODULES = ("onetrip.scheduling.subscribers", "onetrip.notify.subscribers")


@dataclass(frozen=True)
class Event:
    """Base class of every domain event."""


E = TypeVar("E", bound=Event)
InTxHandler = Callable[[Session, Any], None]
ManyHandler = Callable[[Session, list[Any]], None]
AfterHandler = Callable[[Any], None]

_in_tx: dict[type[Event], list[InTxHandler]] = defaultdict(list)
_in_tx_many: dict[type[Event], list[ManyHandler]] = defaultdict(list)
_after: dict[type[Event], list[AfterHandler]] = defaultdict(list)


def publish(db: Session, event: Event) -> None:
    db.info.setdefault(_KEY, []).append(event)


H = TypeVar("H", bound=Callable[..., None])


def _registrar(table: dict[type[Event], list[H]], event_type: type[Event],
               ) -> Callable[[H], H]:
    def register(fn: H) -> H:
        if fn not in table[event_type]:
            table[event_type].append(fn)
        return fn

    return register


def on_commit(event_type: type[E]) -> Callable[[InTxHandler], InTxHandler]:
    return _registrar(_in_tx, event_type)


def on_commit_many(event_type: type[E]) -> Callable[[ManyHandler], ManyHandler]:
    return _registrar(_in_tx_many, event_type)


def after_commit(event_type: type[E]) -> Callable[[AfterHandler], AfterHandler]:
    return _registrar(_after, event_type)


@cache
def load_subscribers() -> None:
    """Register every domain's handlers (once a process)."""
    for module in SUBSCRIBER_MODULES:
        importlib.import_module(module)


def _handlers(table: dict[type[Event], list[Any]], ev: Event) -> list[Any]:
    load_subscribers()
    return [h for cls in type(ev).__mro__ if cls in table for h in table[cls]]


@sa_event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(db: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        db.info.setdefault(_MARKS, {})[transaction] = len(db.info.get(_KEY, []))


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_savepoints(db: Session, transaction: SessionTransaction) -> None:
    # Kept until the transaction ends: a savepoint's rollback is told after its end.
    if transaction.parent is None:
        db.info.pop(_MARKS, None)


@sa_event.listens_for(Session, "before_commit")
def _run_in_transaction(db: Session) -> None:
    if db.in_nested_transaction():  # a savepoint released: its events wait for the commit
        return
    # The queue only grows until the transaction ends: what was dispatched is its first
    # ``dispatched`` events. Handlers may publish further events; keep going until the
    # queue is drained.
    queue: list[Event] = db.info.setdefault(_KEY, [])
    while db.info.get(_DISPATCHED, 0) < len(queue):
        pending = queue[db.info.get(_DISPATCHED, 0):]
        db.info[_DISPATCHED] = len(queue)
        grouped: dict[ManyHandler, list[Event]] = {}
        for ev in pending:
            for handler in _handlers(_in_tx, ev):
                handler(db, ev)
            for many in _handlers(_in_tx_many, ev):
                grouped.setdefault(many, []).append(ev)
        for many, evs in grouped.items():
            many(db, evs)
        db.flush()


@sa_event.listens_for(Session, "after_commit")
def _run_after_commit(db: Session) -> None:
    if db.in_nested_transaction():
        return
    pending = db.info.pop(_KEY, [])
    db.info.pop(_DISPATCHED, None)
    for ev in pending:
        for handler in _handlers(_after, ev):
            try:
                handler(ev)
            except Exception:  # the change is committed; a failing listener must not undo it
                log.exception("after-commit handler %s failed for %s", handler, type(ev).__name__)


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard(db: Session, previous: SessionTransaction) -> None:
    if previous.nested:  # a savepoint: only what was published inside it
        mark = db.info.get(_MARKS, {}).get(previous)
        if mark is not None:
            del db.info.get(_KEY, [])[mark:]
    elif previous.parent is None:  # the transaction itself (not a flush's inner step)
        db.info.pop(_KEY, None)
        db.info.pop(_DISPATCHED, None)
