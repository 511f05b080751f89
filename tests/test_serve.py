"""The app as a server process runs it."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.main import serve_app
from onetrip.notify.models import Notification
from onetrip.scheduling import booking
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Channel
from tests import racekit


def test_the_served_app_freezes_its_start_up_objects_out_of_the_collector() -> None:
    try:
        before = gc.get_freeze_count()
        app = serve_app()
        # Libraries, routes and models: tens of thousands of objects a full collection no
        # longer walks under load.
        assert gc.get_freeze_count() - before > 10_000
        assert "/api/v1/appointments" in app.openapi()["paths"]
    finally:
        gc.unfreeze()


@pytest.fixture
def no_quiet_hours() -> Iterator[None]:
    """No SMS quiet hours, here and in the server: at night (22:00-07:00 local) the
    confirmation of a booking for another day waits for the morning (RM-1, tested in
    tests/notify), and the test below would fail by the clock."""
    saved = {k: os.environ.get(k) for k in ("ONETRIP_NOTIFY_QUIET_START",
                                            "ONETRIP_NOTIFY_QUIET_END")}
    os.environ.update(dict.fromkeys(saved, "00:00"))
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


@pytest.mark.slow
def test_serve_runs_the_sweeper_and_the_reminder_worker_beside_the_server_and_stops_them(
        race_engine: Engine, tmp_path: Path, no_quiet_hours: None) -> None:
    """`onetrip serve` (and so `make run`) works as production does, with nobody pressing a
    button: a hold that ran out is ended and its slot freed by the sweeper (BK-3), a booking's
    confirmation is delivered by the reminder worker (RM-1); stopping the server stops both."""
    seed = racekit.seed(race_engine, patients=2)
    with Session(race_engine) as db:
        clerk, held = racekit.hold_run_out(db, seed)
        booked = booking.book(db, principal=clerk, patient_id=seed.patient_ids[1],
                              channel=Channel.window, schedule_id=seed.schedule_ids[0],
                              now=utcnow())
        held_id, held_slot_id, booked_id = held.id, held.slot_id, booked.id
        db.commit()
    port = racekit.free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from onetrip.cli import app; app()", "serve",
             "--port", str(port)],
            env={**os.environ, "ONETRIP_DATABASE_URL": str(race_engine.info["url"])},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            jobs = _children(proc.pid, expect=2)
            deadline = time.monotonic() + 60
            while True:
                with Session(race_engine) as db:
                    hold = db.get_one(Appointment, held_id)
                    sent = db.scalars(select(Notification.status).where(
                        Notification.appointment_id == booked_id,
                        Notification.template == "booking_confirmed")).all()
                    if hold.status == "expired" and sent == ["sent"]:
                        assert db.get_one(Slot, held_slot_id).status == "free"
                        break
                assert time.monotonic() < deadline, (hold.status, sent)
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in jobs):
        assert time.monotonic() < deadline, "the jobs outlived the server"
        time.sleep(0.1)


@pytest.mark.slow
def test_the_jobs_end_when_their_server_is_killed(race_engine: Engine) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from onetrip.cli import app; app()", "serve",
         "--port", str(racekit.free_port())],
        env={**os.environ, "ONETRIP_DATABASE_URL": str(race_engine.info["url"])},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    jobs = _children(proc.pid, expect=2)
    assert len(jobs) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while any(_parent(Path(f"/proc/{pid}")) is not None for pid in jobs):
        assert time.monotonic() < deadline, "the jobs outlived their killed server"
        time.sleep(0.1)


def _children(pid: int, *, expect: int) -> list[int]:
    """The pids of the jobs ``pid`` started, once ``expect`` of them run their own program
    (a child still between fork and exec shows its parent's command line)."""
    deadline = time.monotonic() + 30
    while True:
        found = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                 and _parent(p) == pid and _is_job(_cmdline(p))]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _is_job(cmdline: bytes) -> bool:
    return b"\0schedule\0sweep\0" in cmdline or b"\0notify\0worker" in cmdline


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


def _parent(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
