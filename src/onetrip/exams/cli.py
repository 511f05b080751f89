"""`onetrip exams ...`: the catalogue as a file the exam centre edits, resources'
calendars, the day's batch plan and the no-show sweep."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

app = typer.Typer(help="Exam booking centre: catalogue, calendars, planning.",
                  no_args_is_help=True)


def _hospital_id(db: Session, code: str) -> int:
    from onetrip.org import service as org_service

    return org_service.access_hospital(db, code).id


@app.command("catalogue-export")
def catalogue_export(hospital: str, out: Path) -> None:
    """Write the hospital's catalogue (exams, preparation, rules, sources) as JSON."""
    from onetrip.db import session_scope
    from onetrip.exams import service

    with session_scope(write=False) as db:
        data = service.readable_catalogue(db, _hospital_id(db, hospital))
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2),
                   encoding="utf-8")
    rules = len(data.get("order", [])) + len(data.get("not_same_day", []))
    typer.echo(f"{len(data.get('exam', []))} exams, {rules} rules -> {out}")


@app.command("rules-table")
def rules_table(hospital: str) -> None:
    """Print the hospital's exams, order rules and pairs kept apart as Markdown tables."""
    from onetrip.db import session_scope
    from onetrip.exams import catalogue, service

    with session_scope(write=False) as db:
        cat = service.catalogue(db, _hospital_id(db, hospital))
    typer.echo(catalogue.rules_table(cat), nl=False)


@app.command("catalogue-import")
def catalogue_import(hospital: str, file: Path) -> None:
    """Replace the hospital's catalogue from a JSON or TOML file; a broken one changes
    nothing and says why."""
    from onetrip.db import session_scope
    from onetrip.errors import OnetripError
    from onetrip.exams import service

    kind = "TOML" if file.suffix == ".toml" else "JSON"
    try:
        text = file.read_text(encoding="utf-8")
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON or TOML, nested too deep
        typer.echo(f"未导入：文件不是有效的 {kind}（{exc}）", err=True)
        raise typer.Exit(1) from exc
    try:
        with session_scope() as db:
            cat = service.install_catalogue(db, hospital_id=_hospital_id(db, hospital),
                                            data=data)
    except OnetripError as exc:
        typer.echo(f"未导入：{exc.text}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"imported {len(cat.exams)} exams, {len(cat.orders) + len(cat.bans)} rules")


@app.command("open-calendars")
def open_calendars(hospital: str, days: int = typer.Option(7, min=1, max=90)) -> None:
    """Slots for the coming days of every active resource (days with slots are kept); a
    room whose exams need days of preparation at home gets that many days more."""
    from onetrip.config import get_settings
    from onetrip.db import session_scope, utcnow
    from onetrip.exams import resources, service
    from onetrip.exams.models import ExamResource

    start = utcnow().astimezone(get_settings().tz).date()
    with session_scope() as db:
        hid = _hospital_id(db, hospital)
        cat = service.catalogue(db, hid)
        added = sum(resources.open_calendar(db, resource=r, start=start, end=start + timedelta(
            days=resources.calendar_days(cat, r.exam_codes, days) - 1))
                    for r in db.scalars(select(ExamResource).where(
                        ExamResource.hospital_id == hid, ExamResource.active)))
    typer.echo(f"{added} slots added")


@app.command("plan-batch")
def plan_batch(hospital: str, book: bool = typer.Option(
        False, "--book", help="book each patient's plan (all of it or none)")) -> None:
    """Plan every patient's waiting orders together; with --book, book the plans."""
    from onetrip.config import get_settings
    from onetrip.db import session_scope, utcnow
    from onetrip.exams import booking, service
    from onetrip.identity.rules import Role
    from onetrip.identity.service import Principal

    tz = get_settings().tz
    with session_scope(write=book) as db:
        hospital_id = _hospital_id(db, hospital)
        now = utcnow()
        plans = service.propose_batch(db, hospital_id=hospital_id, now=now)
        for req, it in plans:
            days = ", ".join(d.isoformat() for d in it.days(tz))
            typer.echo(f"patient {req.patient_id}: {it.trips(tz)} trip(s) {days}, "
                       f"{it.hospital_minutes(tz)} min, unplanned {it.unplanned or '-'}")
        if book:
            centre = Principal(role=Role.exam_centre, hospital_id=hospital_id,
                               label="onetrip exams plan-batch --book")
            booked, failed = booking.book_batch(db, principal=centre, hospital_id=hospital_id,
                                                plans=plans, now=now)
            for pid, reason in failed.items():
                typer.echo(f"patient {pid}: 未预约：{reason}")
            typer.echo(f"{len(booked)} patients booked, {len(failed)} left waiting")


@app.command("sweep-noshows")
def sweep_noshows(hospital: str) -> None:
    """EX-4: bookings not checked in 30 minutes after their start become no-shows."""
    from onetrip.db import session_scope, utcnow
    from onetrip.exams import booking

    with session_scope() as db:
        n = booking.mark_noshows(db, hospital_id=_hospital_id(db, hospital), now=utcnow())
    typer.echo(f"{n} no-shows recorded")


@app.command("itinerary")
def itinerary(patient_id: int, day: str) -> None:
    """Print one patient's exams of a day as the paper slip lists them."""
    from onetrip.db import session_scope
    from onetrip.exams import service

    with session_scope(write=False) as db:
        for line in service.itinerary_lines(db, patient_id=patient_id,
                                            day=date.fromisoformat(day)):
            typer.echo(line)
