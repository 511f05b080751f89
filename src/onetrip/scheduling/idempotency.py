"""Idempotency keys for booking-like POSTs: the same key and body get the same answer.

The key is claimed inside the request's transaction before the work is done, so a
concurrent duplicate waits on the unique index (PostgreSQL) or the write lock (SQLite) and
then finds the stored answer. Only successful answers are stored: a failed request changed
nothing, so repeating it simply runs it again (its claim is released with it).

A batch of bookings claims its keys with one insert (``claim_many``), in key order so that
two batches waiting on each other's keys cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.orm import Session

from onetrip.db import insert_rows, update_rows
from onetrip.identity.service import Principal
from onetrip.scheduling.errors import IdempotencyKeyReused
from onetrip.scheduling.models import IdempotencyRecord


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
class Claim:
    """A key of one request: its stored answer (``status_code > 0``: replay it), or a fresh
    claim (``record_id``) to fill with ``remember_many`` or drop with ``release_many``."""

    record_id: int
    status_code: int = 0
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Wanted:
    owner: str
    key: str
    digest: str


def claim_many(db: Session, wanted: Sequence[Wanted], *, now: datetime,
               ) -> list[Claim | IdempotencyKeyReused]:
    """The claim of each key. The same owner and key twice in one batch is one claim (the
    second repeats the first); another body under a key already used is refused."""
    pairs = sorted({(w.owner, w.key[:200]) for w in wanted})
    digests: dict[tuple[str, str], str] = {}
    for w in wanted:
        digests.setdefault((w.owner, w.key[:200]), w.digest)
    if not pairs:
        return []
    # Insert first (a new key is the common case); a key that is already there, or that
    # another transaction inserts meanwhile (this waits for it to end), is then read.
    rows = insert_rows(db.connection(), cast(Table, IdempotencyRecord.__table__), [
        {"principal_key": o, "key": k, "request_hash": digests[(o, k)], "status_code": 0,
         "body": {}, "created_at": now} for o, k in pairs],
        returning=("principal_key", "key", "id"), skip_conflicts=True)
    found = {(r.principal_key, r.key): (Claim(r.id), digests[(r.principal_key, r.key)])
             for r in rows}
    found |= _stored(db, [p for p in pairs if p not in found])
    out: list[Claim | IdempotencyKeyReused] = []
    for w in wanted:
        claim, digest = found[(w.owner, w.key[:200])]
        out.append(claim if digest == w.digest else IdempotencyKeyReused(detail={"key": w.key}))
    return out


def _stored(db: Session, pairs: Sequence[tuple[str, str]],
            ) -> dict[tuple[str, str], tuple[Claim, str]]:
    """The stored claims of these keys, with the digest of the body each was made for."""
    if not pairs:
        return {}
    t = IdempotencyRecord
    rows = db.execute(select(t.id, t.principal_key, t.key, t.request_hash, t.status_code,
                             t.body).where(tuple_(t.principal_key, t.key).in_(pairs))).all()
    return {(r.principal_key, r.key): (Claim(r.id, r.status_code, r.body), r.request_hash)
            for r in rows}


def claim(db: Session, *, owner: str, key: str, digest: str,
          now: datetime) -> IdempotencyRecord:
    """The record for this key: a stored answer (``status_code > 0``) or a fresh claim."""
    [one] = claim_many(db, [Wanted(owner, key, digest)], now=now)
    if isinstance(one, IdempotencyKeyReused):
        raise one
    return db.get_one(IdempotencyRecord, one.record_id)


def remember(db: Session, record: IdempotencyRecord, status_code: int,
             body: dict[str, Any]) -> None:
    record.status_code, record.body = status_code, body
    db.flush()


def remember_many(db: Session, answers: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
    """Store the answers (record id, status code, body) of fresh claims, with one UPDATE."""
    update_rows(db.connection(), cast(Table, IdempotencyRecord.__table__), "id",
                [{"id": rid, "status_code": code, "body": body} for rid, code, body in answers])


def release_many(db: Session, record_ids: Sequence[int]) -> None:
    """Drop fresh claims of requests that failed: repeating them runs them again."""
    if record_ids:
        db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(record_ids)))


def purge(db: Session, *, before: datetime) -> int:
    """Forget answers older than ``before`` (kept 24 hours by the sweeper)."""
    result = db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
