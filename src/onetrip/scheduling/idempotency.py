"""Idempotency keys for booking-like POSTs: the same key and body get the same answer.

The key is claimed inside the request's transaction before the work is done, so a
concurrent duplicate waits on the unique index (PostgreSQL) or the write lock (SQLite) and
then finds the stored answer. Only successful answers are stored: a failed request changed
nothing, so repeating it simply runs it again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.identity.service import Principal
from onetrip.scheduling.errors import IdempotencyKeyReused
from onetrip.scheduling.models import IdempotencyRecord


def principal_key(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.token_id}:{getattr(principal, 'account_id', '')}"


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def _stored(db: Session, owner: str, key: str, digest: str) -> IdempotencyRecord | None:
    row = db.scalar(select(IdempotencyRecord).where(IdempotencyRecord.principal_key == owner,
                                                    IdempotencyRecord.key == key))
    if row is not None and row.request_hash != digest:
        raise IdempotencyKeyReused(detail={"key": key})
    return row


def claim(db: Session, *, owner: str, key: str, digest: str,
          now: datetime) -> IdempotencyRecord:
    """The record for this key: a stored answer (``status_code > 0``) or a fresh claim."""
    row = _stored(db, owner, key, digest)
    if row is not None:
        return row
    fresh = IdempotencyRecord(principal_key=owner, key=key[:200], request_hash=digest,
                              status_code=0, body={}, created_at=now)
    try:
        with db.begin_nested():
            db.add(fresh)
            db.flush()
    except IntegrityError:
        row = _stored(db, owner, key, digest)
        if row is None:
            raise
        return row
    return fresh


def remember(db: Session, record: IdempotencyRecord, status_code: int,
             body: dict[str, Any]) -> None:
    record.status_code, record.body = status_code, body
    db.flush()


def purge(db: Session, *, before: datetime) -> int:
    """Forget answers older than ``before`` (kept 24 hours by the sweeper)."""
    result = db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
