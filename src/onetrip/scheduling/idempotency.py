"""Idempotency keys for booking-like POSTs: the same key and body get the same answer.

A single request (``claim``) claims its key inside its transaction before the work is done,
so a concurrent duplicate waits on the unique index (PostgreSQL) or the write lock (SQLite)
and then finds the stored answer. Only successful answers are stored: a failed request
changed nothing, so repeating it simply runs it again (its claim rolled back with it).

A batch of bookings (the group committer) writes each key once, with its answer. It takes
its keys first (``stored_many``: on PostgreSQL a transaction-level advisory lock per key, in
one statement; on SQLite the write lock it already holds), so a duplicate sent to another
process at the same moment waits there until this batch commits and then replays its
answer. It then reads the stored answers, books, and inserts the answers of the fresh keys
in one statement (``store_many``). That costs a lock, a read and an insert, where a claim
row costs an insert, an update and (for a refusal) a delete. A key that a single request
claimed meanwhile (``claim`` takes no advisory lock) is caught by the unique index at the
insert: the batch then rolls back and runs again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, delete, select, text
from sqlalchemy.orm import Session

from onetrip.db import among_bound, insert_rows, read_built
from onetrip.identity.service import Principal
from onetrip.scheduling.errors import IdempotencyKeyReused
from onetrip.scheduling.models import IdempotencyRecord

_TABLE = cast(Table, IdempotencyRecord.__table__)
_KEY_LOCK = 7_303  # advisory-lock namespace of idempotency keys (see groupcommit)


def principal_key(principal: Principal) -> str:
    """Whose keys these are: the token, the phone account or the staff member (a signed-in
    staff member has neither token nor account; without its id, every clerk of a role
    would share one set of keys)."""
    return (f"{principal.role.value}:{principal.token_id}:{principal.account_id}:"
            f"{principal.staff_id}")


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Wanted:
    owner: str
    key: str
    digest: str


@dataclass(frozen=True)
class Stored:
    """The answer stored for a key: replay it."""

    status_code: int
    body: dict[str, Any]


def stored_many(db: Session, wanted: Sequence[Wanted],
                ) -> list[Stored | IdempotencyKeyReused | None]:
    """Take the keys for this transaction, then for each: its stored answer, a refusal when
    it was used for another body, or None for a key not used yet."""
    pairs = sorted({(w.owner, w.key[:200]) for w in wanted})
    if pairs and db.get_bind().dialect.name == "postgresql":
        # In hash order, so two batches never wait for each other's keys in a circle.
        db.connection().execute(_LOCK_KEYS, {"ns": _KEY_LOCK,
                                             "keys": [f"{o}\n{k}" for o, k in pairs]})
    found = _stored(db, pairs)
    out: list[Stored | IdempotencyKeyReused | None] = []
    for w in wanted:
        row = found.get((w.owner, w.key[:200]))
        if row is None or not row.status_code:
            out.append(None)
        elif row.request_hash != w.digest:
            out.append(IdempotencyKeyReused(detail={"key": w.key}))
        else:
            out.append(Stored(row.status_code, row.body or {}))
    return out


def store_many(db: Session, answers: Sequence[tuple[Wanted, int, dict[str, Any]]], *,
               now: datetime) -> bool:
    """Store the answers of keys ``stored_many`` found unused, with one insert in key order.
    False when another transaction stored one of them meanwhile: this one must roll back
    and run again (it will then replay that answer)."""
    rows = sorted(({"principal_key": w.owner, "key": w.key[:200], "request_hash": w.digest,
                    "status_code": code, "body": body, "created_at": now}
                   for w, code, body in answers),
                  key=lambda r: (r["principal_key"], r["key"]))
    if not rows:
        return True
    inserted = insert_rows(db.connection(), _TABLE, rows, returning=("id",),
                           skip_conflicts=True)
    return len(inserted) == len(rows)


def _stored(db: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The stored records of these keys (id, status, body and the digest of their body)."""
    if not pairs:
        return {}
    # Owners and keys as two lists (a statement text that does not grow with the batch);
    # the few rows of another owner's same key are dropped here.
    rows = read_built(db, _stored_statement, {
        "owners": sorted({o for o, _k in pairs}), "keys": sorted({k for _o, k in pairs})}).all()
    wanted = set(pairs)
    return {(r.principal_key, r.key): r for r in rows if (r.principal_key, r.key) in wanted}


@lru_cache(maxsize=4)
def _stored_statement(dialect: str) -> Any:
    t = _TABLE.c
    return select(t.id, t.principal_key, t.key, t.request_hash, t.status_code, t.body).where(
        among_bound(dialect, t.principal_key, "owners"), among_bound(dialect, t.key, "keys"))


_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(:ns, h) FROM (SELECT DISTINCT hashtext(k) AS h "
                  "FROM unnest(CAST(:keys AS text[])) AS k) AS x ORDER BY h")


def claim(db: Session, *, owner: str, key: str, digest: str,
          now: datetime) -> IdempotencyRecord:
    """The record for this key: a stored answer (``status_code > 0``) or a fresh claim to
    fill with ``remember``. Another body under a used key is refused."""
    key = key[:200]
    # Insert first (a new key is the common case); a key that is already there, or that
    # another transaction inserts meanwhile (this waits for it to end), is then read.
    inserted = insert_rows(db.connection(), _TABLE, [
        {"principal_key": owner, "key": key, "request_hash": digest, "status_code": 0,
         "body": {}, "created_at": now}], returning=("id",), skip_conflicts=True)
    if inserted:
        return db.get_one(IdempotencyRecord, inserted[0].id)
    row = _stored(db, [(owner, key)])[(owner, key)]
    if row.request_hash != digest:
        raise IdempotencyKeyReused(detail={"key": key})
    return db.get_one(IdempotencyRecord, row.id)


def remember(db: Session, record: IdempotencyRecord, status_code: int,
             body: dict[str, Any]) -> None:
    record.status_code, record.body = status_code, body
    db.flush()


def purge(db: Session, *, before: datetime) -> int:
    """Forget answers older than ``before`` (kept 24 hours by the sweeper)."""
    result = db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
