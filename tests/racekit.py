"""Real processes against a real database: a committed database of its own, uvicorn servers
started as subprocesses, and many concurrent HTTP clients.

Used by the race tests (and the booking benchmark) so that concurrency is proven by running
it, not by reasoning about it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from onetrip import migrate
from onetrip.config import get_settings
from onetrip.db import make_engine, utcnow
from onetrip.identity import service as identity_service
from onetrip.identity.rules import DocumentType, Role
from onetrip.identity.service import Principal
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.rules import SessionOfDay
from tests.factories import make_department, make_hospital, make_practitioner, resident_id


def fresh_database(name: str, revision: str = "head") -> tuple[str, Callable[[], None]]:
    """A new, empty database migrated to ``revision``: a file for SQLite, a database on the
    PostgreSQL server of ONETRIP_TEST_DATABASE_URL otherwise. Returns its URL and a
    clean-up."""
    base = os.environ.get("ONETRIP_TEST_DATABASE_URL")
    if not base:
        folder = Path(tempfile.mkdtemp(prefix=f"onetrip-{name}-"))
        url = f"sqlite:///{folder / 'race.db'}"
        migrate.upgrade(url, revision)
        return url, lambda: None
    parsed = make_url(base)
    dbname = f"{parsed.database}_{name}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))

    drop()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    url = parsed.set(database=dbname).render_as_string(hide_password=False)
    migrate.upgrade(url, revision)
    return url, drop


def chinese_name(n: int) -> str:
    return "并发" + "".join("零一二三四五六七八九"[int(d)] for d in str(n))


@dataclass
class Seed:
    hospital_code: str
    schedule_ids: list[int]
    patient_ids: list[int]
    window_token: str


def hold_run_out(db: Session, seed: Seed) -> tuple[Principal, Any]:
    """The seed's window clerk, and a hold it took for the first patient ten minutes ago,
    run out by now (for a sweeper to end)."""
    from onetrip.org.models import Hospital
    from onetrip.scheduling import booking
    from onetrip.scheduling.rules import Channel

    hospital_id = db.scalars(select(Hospital.id).where(
        Hospital.code == seed.hospital_code)).one()
    clerk = Principal(role=Role.window, hospital_id=hospital_id, label="test")
    return clerk, booking.book(db, principal=clerk, patient_id=seed.patient_ids[0],
                               channel=Channel.window, schedule_id=seed.schedule_ids[0],
                               now=utcnow() - timedelta(minutes=10), hold=True)


def seed(engine: Engine, *, patients: int, schedules: int = 1, capacity: int = 5,
         departments: int = 1) -> Seed:
    """A hospital whose every slot is online (all referral slots already returned), the
    schedules three days ahead (dealt round the departments), real-name patients and a
    window token."""
    tz = get_settings().tz
    day = utcnow().astimezone(tz).date() + timedelta(days=3)
    with Session(engine) as db:
        h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
        scheduling_service.set_policy(db, hospital=h, pools={
            "online_share": 1.0, "priority_share": 0, "clinic_share": 0,
            "max_active_appointments": 50})
        depts = [make_department(db, h, name=name)
                 for name in ["心血管内科", "消化内科", "呼吸内科", "内分泌科"][:departments]]
        ids = []
        for i in range(schedules):
            dept = depts[i % len(depts)]
            doc = make_practitioner(db, h, dept)
            s = scheduling_service.create_schedule(
                db, hospital=h, department=dept, day=day, session=SessionOfDay.am,
                practitioner=doc, capacity=capacity, slot_minutes=1 if capacity > 200 else 5,
                now=utcnow() - timedelta(days=30))
            ids.append(s.id)
            if i % 50 == 49:
                db.flush()
        clerk = Principal(role=Role.window, hospital_id=h.id, label="seed")
        pids = []
        for n in range(patients):
            reg = identity_service.register_patient(
                db, clerk, name=chinese_name(n + 1), document_type=DocumentType.resident_id_card,
                document_number=resident_id(date(1970, 1, 1) + timedelta(days=n), seq="123"),
                phone=f"1380000{n:04d}")
            pids.append(reg.patient.id)
        _row, token = identity_service.create_token(db, role=Role.window, hospital_code=h.code)
        db.commit()
        return Seed(h.code, ids, pids, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, *, workers: int = 2, port: int | None = None,
           env: dict[str, str] | None = None,
           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``onetrip`` served by uvicorn in its own process(es) against ``url``.

    One window token fires every request here, so the per-account and per-address rate
    limits are lifted unless ``env`` sets them.
    """
    port = port or free_port()
    env = {**os.environ, "ONETRIP_DATABASE_URL": url, "ONETRIP_LOG_LEVEL": "WARNING",
           "ONETRIP_BOOKING_RATE_PER_ACCOUNT": "1000000",
           "ONETRIP_BOOKING_RATE_PER_ADDRESS": "1000000", **(env or {})}
    # The server's stderr goes to a file: a pipe nobody reads fills up and stalls the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "onetrip.main:serve_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--log-level", "warning", "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    _stop(proc)
                    log.seek(0)
                    raise RuntimeError(
                        f"server did not start: {log.read().decode()[-2000:]}")
                time.sleep(0.1)
            yield base, proc
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session, and every worker it forked."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def storm(base: str, requests: list[dict[str, Any]], *, token: str,
          path: str = "/api/v1/appointments", paths: list[str] | None = None,
          ) -> list[tuple[int, dict[str, Any]]]:
    """Fire every request at once (one thread each, released by a barrier), to ``path`` or
    each to its own of ``paths``."""
    results: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i: int, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            barrier.wait()
            try:
                r = c.post(paths[i] if paths else path, json=body,
                           headers={"Idempotency-Key": f"storm-{i}"})
                results[i] = (r.status_code, r.json() if r.content else {})
            except httpx.HTTPError as exc:
                results[i] = (-1, {"error": repr(exc)})

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
