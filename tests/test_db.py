"""Many rows in one statement (``db.insert_rows``): times keep their instant, a naive time is
refused, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from onetrip.db import UTCDateTime, insert_rows
from onetrip.identity.models import Patient
from onetrip.notify.models import Notification
from onetrip.scheduling.models import IdempotencyRecord

_TABLE = cast(Table, IdempotencyRecord.__table__)


def _row(key: str, at: datetime) -> dict[str, object]:
    return {"principal_key": "test", "key": key, "request_hash": "-", "status_code": 201,
            "body": {"说明": "中文", "n": 1}, "created_at": at}


def test_rows_keep_the_instant_of_a_time_given_in_any_zone(db: Session) -> None:
    shanghai = datetime(2026, 12, 5, 8, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    insert_rows(db.connection(), _TABLE, [_row("a", shanghai),
                                          _row("b", shanghai + timedelta(hours=1))])
    stored = dict(db.execute(select(IdempotencyRecord.key, IdempotencyRecord.created_at)
                             .where(IdempotencyRecord.principal_key == "test")).all())
    assert stored["a"] == shanghai and stored["a"].utcoffset() == timedelta(0)
    assert stored["b"] - stored["a"] == timedelta(hours=1)
    body = db.scalar(select(IdempotencyRecord.body).where(IdempotencyRecord.key == "a"))
    assert body == {"说明": "中文", "n": 1}


def test_a_naive_time_is_refused_and_nothing_is_written(db: Session) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        insert_rows(db.connection(), _TABLE, [_row("c", datetime(2026, 12, 5, 8, 0))])
    db.rollback()
    assert db.scalar(select(IdempotencyRecord.id).where(IdempotencyRecord.key == "c")) is None


def test_sqlite_stores_times_in_sqlalchemys_text_form(engine: Engine) -> None:
    # Stored times are compared as text on SQLite: the fast writer must write exactly what
    # SQLAlchemy's own writer did, or old and new rows would no longer sort together.
    reference = sqlite.DATETIME().bind_processor(sqlite.dialect())
    ours = UTCDateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert reference is not None and ours is not None
    for moment in (datetime(2026, 12, 5, 0, 0, tzinfo=UTC),
                   datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                   datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)):
        assert ours(moment) == reference(moment.replace(tzinfo=None))


def test_columns_left_out_take_their_defaults(db: Session) -> None:
    patient_id = db.scalar(select(Patient.id).limit(1))
    at = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    insert_rows(db.connection(), cast(Table, Notification.__table__), [{
        "patient_id": patient_id, "channel": "sms", "template": "booking_confirmed",
        "variables": {"time": "12月5日 16:00"}, "attempts": 0, "send_at": at,
        "next_attempt_at": at, "dedupe_key": "test-defaults", "last_error": "",
        "created_at": at}])
    row = db.execute(select(Notification.status, Notification.resends, Notification.read_at)
                     .where(Notification.dedupe_key == "test-defaults")).one()
    assert tuple(row) == ("queued", 0, None)
