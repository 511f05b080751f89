"""The `onetrip` command: serve, migrate, demo, and each domain's commands."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import typer

from onetrip.config import get_settings
from onetrip.exams.cli import app as exams_app
from onetrip.identity.cli import app as token_app
from onetrip.identity.cli import audit_app, identity_app
from onetrip.logs import install_redaction
from onetrip.notify.cli import app as notify_app
from onetrip.org.cli import app as calendar_app
from onetrip.quality.cli import app as quality_app
from onetrip.scheduling.cli import app as schedule_app

app = typer.Typer(help="OneTrip 最多跑一次: booking and one-trip care for a region.",
                  no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(identity_app, name="identity")
app.add_typer(audit_app, name="audit")
app.add_typer(calendar_app, name="calendar")
app.add_typer(schedule_app, name="schedule")
app.add_typer(quality_app, name="quality")
app.add_typer(notify_app, name="notify")
app.add_typer(exams_app, name="exams")


@app.callback()
def _every_command() -> None:
    """Every command's own logs (the worker's, the sweeper's) are masked as the server's."""
    install_redaction()


#: The clock-driven jobs `serve` runs beside the server unless told not to (``--no-jobs``):
#: production runs each as a service of its own (docs/booking.md, docs/notifications.md).
JOBS = (("schedule", "sweep", "--every", "30"), ("notify", "worker"))


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          reload: bool = False,
          jobs: bool = typer.Option(True, help="Also run the sweeper (every 30 s) and the "
                                    "reminder worker, each in a process of its own, and stop "
                                    "them with the server.")) -> None:
    """Serve the web app and API (http://HOST:PORT)."""
    import uvicorn

    logging.basicConfig(level=get_settings().log_level)
    started = _start_jobs() if jobs else []
    # uvicorn shuts down gracefully on SIGTERM, then raises it again under the handler it
    # found: this one ends the command normally, so that the jobs are stopped too.
    signal.signal(signal.SIGTERM, _exit_normally)
    try:
        uvicorn.run("onetrip.main:serve_app", factory=True, host=host, port=port,
                    workers=workers, reload=reload,
                    log_level=get_settings().log_level.lower())
    finally:
        _stop_jobs(started)


def _exit_normally(_sig: int, _frame: object) -> None:
    raise SystemExit(0)


def _start_jobs() -> list[subprocess.Popen[bytes]]:
    server = os.getpid()
    return [subprocess.Popen([sys.executable, "-c", "from onetrip.cli import app; app()", *job],
                             preexec_fn=lambda: _die_with(server)) for job in JOBS]


def _die_with(server: int) -> None:
    """In the job's process, before it starts: end it (SIGTERM) if the server dies without
    stopping it, as under ``kill -9`` (Linux; elsewhere the job outlives such a server).
    A server that died before this ran has already left the job to another parent."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != server:
            os._exit(0)


def _stop_jobs(started: list[subprocess.Popen[bytes]]) -> None:
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@app.command()
def migrate(revision: str = "head") -> None:
    """Bring the database schema up to date (SQLite or PostgreSQL)."""
    from onetrip import migrate as migrations

    migrations.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def demo(seed: int = typer.Option(20261122, help="Seed: the same seed gives the same data.")
         ) -> None:
    """Load the demo region 示范市 (idempotent; refuses a database with other data)."""
    from onetrip.db import session_scope
    from onetrip.demo import load_demo
    from onetrip.errors import OnetripError

    try:
        with session_scope() as db:
            result = load_demo(db, seed=seed)
    except OnetripError as exc:
        typer.echo(f"{exc.code}: {exc.text}", err=True)
        raise typer.Exit(2) from exc
    from onetrip.identity.cli import print_demo_credentials

    if not result.created:
        typer.echo(f"demo region already loaded (seed {seed}); nothing changed")
    else:
        typer.echo(f"demo region loaded (seed {seed}): " +
                   ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    print_demo_credentials(seed)
