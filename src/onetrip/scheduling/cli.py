"""`onetrip schedule ...`: templates, generation, the Excel sheet, the sweeper."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import typer

from onetrip.cli_errors import reported
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal

#: Who the audit trail names for changes made from this command line.
CLI = Principal(role=Role.regional_admin, label="onetrip-cli")

app = typer.Typer(help="Schedules: weekly templates, the Excel sheet, generation, sweeping.",
                  no_args_is_help=True)


@app.command("import")
def import_sheet(path: Path, hospital: str = typer.Option(...)) -> None:
    """Replace the weekly templates of the doctors the .xlsx sheet lists (all rows or none)."""
    from onetrip.db import session_scope
    from onetrip.org import service as org_service
    from onetrip.scheduling import templates

    with reported(item="row"), session_scope() as db:
        done = templates.import_sheet(db, hospital=org_service.access_hospital(db, hospital),
                                      content=path.read_bytes(), by=CLI)
    typer.echo(f"imported {done.sessions} weekly sessions")


@app.command("export")
def export_sheet(path: Path, hospital: str = typer.Option(...)) -> None:
    """Write the hospital's weekly templates as the .xlsx sheet the import reads."""
    from onetrip.db import session_scope
    from onetrip.org import service as org_service
    from onetrip.scheduling import templates

    with reported(), session_scope(write=False) as db:
        path.write_bytes(templates.export_sheet(db, org_service.access_hospital(db, hospital)))
    typer.echo(f"wrote {path}")


@app.command("generate")
def generate(hospital: str = typer.Option(...),
             start: str = typer.Option(None, "--from", help="YYYY-MM-DD, default today"),
             days: int = typer.Option(14, min=1, max=92)) -> None:
    """Create the sessions of the weekly templates for the coming days (idempotent)."""
    from onetrip.config import get_settings
    from onetrip.db import session_scope, utcnow
    from onetrip.org import service as org_service
    from onetrip.scheduling import service

    now = utcnow()
    first = date.fromisoformat(start) if start else now.astimezone(get_settings().tz).date()
    with reported(), session_scope() as db:
        report = service.generate_from_templates(
            db, hospital=org_service.access_hospital(db, hospital), start=first,
            end=first + timedelta(days=days - 1), now=now, by=CLI)
    typer.echo(f"created {report.created} sessions, {report.existing} already existed")
    for day, reason in sorted(report.skipped_days.items()):
        typer.echo(f"  skipped {day.isoformat()}: {reason}")


@app.command("sweep")
def sweep(every: float = typer.Option(0, help="Repeat every N seconds (0: once).")) -> None:
    """End lapsed holds and offers, mark no-shows, forget old idempotency keys."""
    from dataclasses import astuple

    from onetrip.db import session_scope, utcnow
    from onetrip.scheduling.sweep import sweep as run_sweep

    while True:
        with session_scope() as db:
            report = run_sweep(db, now=utcnow())
        if every <= 0 or any(astuple(report)):  # repeating, a pass that did nothing is quiet
            typer.echo(f"holds {report.holds_expired}, waitlist offers "
                       f"{report.waitlist_offers_expired}, rebooking offers "
                       f"{report.rebooking_offers_expired}, no-shows {report.noshows}")
        if every <= 0:
            return
        time.sleep(every)
