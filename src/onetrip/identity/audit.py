"""The audit trail: one append-only row per read or write of patient data, hash-chained.

Each row stores ``prev_hash`` (the hash of the row before it in its chain) and its own
``hash`` over its fields and ``prev_hash``; editing, deleting or inserting a row anywhere
breaks its chain from that row on, which ``verify_chain`` (``onetrip audit verify``) reports.
The migration adds triggers that refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE).

Rows are spread over ``CHAINS`` parallel chains. A transaction extends one chain only, which
it holds until it commits: on PostgreSQL a transaction-level advisory lock, taken without
waiting on the first free chain from the patient's own (or the actor's, when no patient is
involved), so a chain never forks and concurrent transactions rarely wait; one lock for all
rows would serialise every transaction that touches patient data (every booking) behind one
another. A batch of bookings writes all its rows to its one chain with one insert.

A denied attempt must outlive the rollback that the refusal causes: denied rows are kept on
the session and written again after the rollback (``deps.get_db`` then commits them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from onetrip.db import insert_rows, utcnow
from onetrip.identity.models import AuditEvent
from onetrip.identity.principal import Principal

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_DENIED = "onetrip.audit.denied"
_REPLAYED = "onetrip.audit.replayed"
_LOCK_KEY = 0x0A0D17  # advisory lock id of the audit chain
_TABLE = cast(Table, AuditEvent.__table__)

CHAINS = 32

_HASHED = ("chain", "at", "actor", "actor_role", "staff_id", "account_id", "token_id",
           "hospital_id", "patient_id", "action", "outcome", "request_id", "client_ip", "detail",
           "prev_hash")


def row_hash(values: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a row's fields (``at`` as UTC ISO 8601)."""
    payload = {k: values[k] for k in _HASHED}
    at = payload["at"]
    payload["at"] = at.isoformat(timespec="microseconds") if isinstance(at, datetime) else at
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def chain_of(patient_id: int | None, actor: str) -> int:
    """The chain a row belongs to: stable for a patient (or an actor), spread over CHAINS."""
    key = f"p{patient_id}" if patient_id is not None else f"a{actor}"
    return zlib.crc32(key.encode()) % CHAINS


_HELD = "onetrip.audit.chain"  # session info: the chain this transaction has locked


def _take_chain(db: Session, preferred: int) -> int:
    """A chain this transaction may extend: the one it already holds, else the first free
    one from ``preferred`` on (PostgreSQL: a transaction-level advisory lock, tried without
    waiting; all busy, it waits for ``preferred``). SQLite has one writer at a time."""
    held = db.info.get(_HELD)
    if held is not None:
        return int(held)
    chain = preferred
    if db.get_bind().dialect.name == "postgresql":
        for k in range(CHAINS):
            candidate = (preferred + k) % CHAINS
            if db.connection().execute(_TRY_CHAIN, {"k": _LOCK_KEY, "c": candidate}).scalar():
                chain = candidate
                break
        else:
            db.connection().execute(_WAIT_CHAIN, {"k": _LOCK_KEY, "c": preferred})
    db.info[_HELD] = chain
    return chain


def hold_chain(db: Session, key: str) -> None:
    """Take this transaction's chain now, before its other locks (a batch of bookings): a
    chain taken last might wait for a transaction that waits for this one's locks.
    ``key`` spreads the callers over the chains (a process's batches prefer one)."""
    _take_chain(db, zlib.crc32(key.encode()) % CHAINS)


def _last_hash(db: Session, chain: int) -> str:
    # Rows are flushed as they are written (``_write``, ``record_many``): no autoflush needed.
    last = db.connection().execute(_LAST_HASH, {"chain": chain}).scalar()
    return last or GENESIS


_TRY_CHAIN = text("SELECT pg_try_advisory_xact_lock(:k, :c)")
_WAIT_CHAIN = text("SELECT pg_advisory_xact_lock(:k, :c)")
_LAST_HASH = (select(_TABLE.c.hash).where(_TABLE.c.chain == bindparam("chain"))
              .order_by(_TABLE.c.id.desc()).limit(1))


def _write_all(db: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chain rows onto one chain, in order: each row's ``prev_hash`` is the hash before it."""
    chain = _take_chain(db, chain_of(rows[0]["patient_id"], rows[0]["actor"]))
    prev = _last_hash(db, chain)
    chained = []
    for values in rows:
        values = {**values, "chain": chain, "prev_hash": prev}
        prev = row_hash(values)
        chained.append({**values, "hash": prev})
    return chained


def _write(db: Session, values: dict[str, Any]) -> AuditEvent:
    row = AuditEvent(**_write_all(db, [values])[0])
    db.add(row)
    db.flush()
    return row


def _values(principal: Principal, *, action: str, patient_id: int | None, outcome: str,
            detail: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "at": utcnow(), "actor": principal.actor, "actor_role": principal.role.value,
        "staff_id": principal.staff_id, "account_id": principal.account_id,
        "token_id": principal.token_id, "hospital_id": principal.hospital_id,
        "patient_id": patient_id, "action": action, "outcome": outcome,
        "request_id": principal.request_id, "client_ip": principal.client_ip,
        "detail": detail or {},
    }


def record(db: Session, principal: Principal, *, action: str, patient_id: int | None,
           outcome: str = "allowed", detail: dict[str, Any] | None = None) -> AuditEvent:
    """Write one audit row; a denied one is also kept to be written again after a rollback."""
    values = _values(principal, action=action, patient_id=patient_id, outcome=outcome,
                     detail=detail)
    row = _write(db, values)
    if outcome == "denied":
        db.info.setdefault(_DENIED, []).append(values)
    return row


@dataclass(frozen=True)
class Entry:
    """One audit row to write with ``record_many``."""

    principal: Principal
    action: str
    patient_id: int | None
    outcome: str = "allowed"
    detail: dict[str, Any] | None = None


def record_many(db: Session, entries: Sequence[Entry]) -> None:
    """Write many audit rows with one insert (a batch of bookings); denied ones are kept to
    be written again after a rollback, as ``record`` does."""
    if not entries:
        return
    rows = [_values(e.principal, action=e.action, patient_id=e.patient_id, outcome=e.outcome,
                    detail=e.detail) for e in entries]
    insert_rows(db.connection(), _TABLE, _write_all(db, rows))
    db.info.setdefault(_DENIED, []).extend(
        values for values, e in zip(rows, entries, strict=True) if e.outcome == "denied")


@sa_event.listens_for(Session, "after_commit")
def _forget_denials(db: Session) -> None:
    db.info.pop(_DENIED, None)


@sa_event.listens_for(Session, "after_transaction_end")
def _release_chain(db: Session, transaction: SessionTransaction) -> None:
    # The database released the chain lock with the transaction, however it ended
    # (commit, rollback, or the session closed).
    if transaction.parent is None:
        db.info.pop(_HELD, None)


@sa_event.listens_for(Session, "after_soft_rollback")
def _replay_denials(db: Session, previous: SessionTransaction) -> None:
    # A rolled-back savepoint may have been where the chain lock was taken (PostgreSQL
    # releases it with the savepoint): take one afresh next time.
    db.info.pop(_HELD, None)
    if previous.parent is not None or not db.is_active:
        return
    pending = db.info.pop(_DENIED, None)
    if not pending:
        return
    try:
        for values in pending:
            _write(db, {k: v for k, v in values.items() if k not in ("prev_hash", "chain")})
        db.info[_REPLAYED] = True
    except Exception:  # the original error matters more; the database may be gone
        log.exception("could not keep %d denied audit rows after a rollback", len(pending))


def take_replayed(db: Session) -> bool:
    """Whether denied rows were written after a rollback and still need a commit."""
    return bool(db.info.pop(_REPLAYED, False))


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_id: int | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify_chain(db: Session, *, batch: int = 5000) -> ChainReport:
    """Recompute every hash in id order; report the first row where the chain breaks."""
    prev: dict[int, str] = {}
    count = 0
    last_id = 0
    while True:
        cols = [AuditEvent.id, AuditEvent.hash, *(getattr(AuditEvent, k) for k in _HASHED)]
        rows = db.execute(select(*cols).where(AuditEvent.id > last_id)
                          .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            return ChainReport(rows=count, first_broken_id=None)
        for row in rows:
            values = dict(zip(_HASHED, row[2:], strict=True))
            chain = values["chain"]
            if values["prev_hash"] != prev.get(chain, GENESIS) or row_hash(values) != row.hash:
                return ChainReport(rows=count, first_broken_id=row.id)
            prev[chain] = row.hash
            count += 1
            last_id = row.id


def search(db: Session, *, patient_ids: list[int] | None = None, staff_id: int | None = None,
           limit: int = 200) -> list[AuditEvent]:
    """Audit rows about some patients or by one staff member, newest first."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if patient_ids is not None:
        stmt = stmt.where(AuditEvent.patient_id.in_(patient_ids))
    if staff_id is not None:
        stmt = stmt.where(AuditEvent.staff_id == staff_id)
    return list(db.scalars(stmt))
