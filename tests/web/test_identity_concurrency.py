"""Concurrent patient reads against the live server: every read gets its audit row, none
fails with a locked database, and the hash chain stays one chain (no fork)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
from sqlalchemy import func, select

from onetrip.db import session_scope
from onetrip.identity import audit
from onetrip.identity.models import AuditEvent
from onetrip.identity.rules import Role
from onetrip.org import service as org_service
from tests.factories import make_patient, make_token, resident_id


def test_concurrent_reads_each_leave_one_audit_row_and_one_chain(live_server: str) -> None:
    with session_scope() as db:  # committed: the server runs in other threads
        hospital = org_service.access_hospital(db, "sfsrmyy")
        token = make_token(db, Role.doctor, hospital)
        ids = [make_patient(db, document_number=resident_id(date(1940, 1, 1 + i),
                                                            region="330683", seq="771")).id
               for i in range(8)]
        before = db.scalar(select(func.count(AuditEvent.id))) or 0

    def read(pid: int) -> int:
        r = httpx.get(f"{live_server}/api/v1/patients/{pid}",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return r.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(read, ids * 10))
    assert statuses == [200] * 80
    with session_scope() as db:
        after = db.scalar(select(func.count(AuditEvent.id))) or 0
        assert after - before == 80
        assert audit.verify_chain(db).ok


def test_a_change_is_committed_before_its_response_arrives(live_server: str) -> None:
    from onetrip.identity import sms

    for i in range(20):
        phone = f"1395752{i:04d}"
        r = httpx.post(f"{live_server}/api/v1/auth/sms-codes", json={"phone": phone},
                       timeout=30)
        assert r.status_code == 202
        with session_scope() as db:
            assert sms.outbox_messages(db, phone), f"message {i} not yet committed"
