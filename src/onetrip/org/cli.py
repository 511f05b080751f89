"""`onetrip calendar ...`: show and import the working calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from onetrip.cli_errors import reported

app = typer.Typer(help="Working calendar: statutory holidays, 调休 and local rulings.",
                  no_args_is_help=True)


@app.command("show")
def show(hospital: str = typer.Option(...), start: str = typer.Option(..., "--from"),
         end: str | None = typer.Option(None, "--to")) -> None:
    """Print each date's ruling for a hospital, with the reason."""
    from onetrip.db import session_scope
    from onetrip.org import calendar, service

    first, last = _day(start), _day(end) if end else _day(start)
    with reported(), session_scope() as db:
        h = service.access_hospital(db, hospital)
        for d in calendar.clinic_days(db, h, first, last):
            typer.echo(f"{d.day.isoformat()}  {d.status.value:7}  {d.reason}")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        typer.echo(f"not a date (YYYY-MM-DD): {text}", err=True)
        raise typer.Exit(2) from exc


@app.command("import")
def import_file(path: Path, hospital: str | None = typer.Option(None),
                region: str | None = typer.Option(None)) -> None:
    """Import a CSV of `date,kind,name` lines for a hospital or a whole region (all or none)."""
    from sqlalchemy import select

    from onetrip.db import session_scope
    from onetrip.org import calendar, service
    from onetrip.org.models import Region

    if (hospital is None) == (region is None):
        typer.echo("give exactly one of --hospital or --region", err=True)
        raise typer.Exit(2)
    with reported(), session_scope() as db:
        text = path.read_text(encoding="utf-8-sig")
        if hospital is not None:
            h = service.access_hospital(db, hospital)
            count = calendar.import_overrides(db, text, hospital=h, source=f"file:{path.name}")
        else:
            r = db.scalar(select(Region).where(Region.code == region))
            if r is None:
                typer.echo(f"unknown region {region}", err=True)
                raise typer.Exit(2)
            count = calendar.import_overrides(db, text, region_id=r.id,
                                              source=f"file:{path.name}")
    typer.echo(f"imported {count} dates")
