"""`onetrip calendar ...`: show and import the working calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

app = typer.Typer(help="Working calendar: statutory holidays, 调休 and local rulings.",
                  no_args_is_help=True)


@app.command("show")
def show(hospital: str = typer.Option(...), start: str = typer.Option(..., "--from"),
         end: str | None = typer.Option(None, "--to")) -> None:
    """Print each date's ruling for a hospital, with the reason."""
    from onetrip.db import session_scope
    from onetrip.org import calendar, service

    with session_scope() as db:
        h = service.access_hospital(db, hospital)
        first = date.fromisoformat(start)
        for d in calendar.clinic_days(db, h, first, date.fromisoformat(end) if end else first):
            typer.echo(f"{d.day.isoformat()}  {d.status.value:7}  {d.reason}")


@app.command("import")
def import_file(path: Path, hospital: str | None = typer.Option(None),
                region: str | None = typer.Option(None)) -> None:
    """Import a CSV of `date,kind,name` lines for a hospital or a whole region (all or none)."""
    from sqlalchemy import select

    from onetrip.db import session_scope
    from onetrip.errors import OnetripError
    from onetrip.org import calendar, service
    from onetrip.org.models import Region

    if (hospital is None) == (region is None):
        typer.echo("give exactly one of --hospital or --region", err=True)
        raise typer.Exit(2)
    try:
        with session_scope() as db:
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
    except OnetripError as exc:
        typer.echo(f"{exc.code}: {exc.text}", err=True)
        for item in exc.detail or []:
            typer.echo(f"  line {item.get('line')}: {item.get('error')}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"imported {count} dates")
