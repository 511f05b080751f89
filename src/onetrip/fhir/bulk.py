"""SMART Scheduling Links: the region's slot directory for slot-discovery clients.

``$bulk-publish`` is a manifest naming NDJSON files: the hospitals' sites (Location), the
sessions to come (Schedule) and one Slot file per hospital. Files are the public view:
a slot is ``free`` only while it is released to the public online pool and its day's
booking is not paused overnight; referral-only, window-only, priority and clinic slots
(BK-4, BK-5) and the slots of a paused day are published as ``busy``, the only other status
the Slot files know. ``_since`` narrows Schedule and Slot files to what may have changed
after that instant. Slot files are split by hospital and ISO week so that each stays small
for a region of any size.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import exists, or_, select

from onetrip.fhir import resources as fr
from onetrip.fhir.context import Context
from onetrip.fhir.outcome import InvalidSearch
from onetrip.fhir.params import check_year, instant
from onetrip.fhir.slots import bookable, department_of, doctor_of, slot_status
from onetrip.org.models import Hospital, Region
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Schedule, Slot

#: Clients poll the manifest every few minutes; a minute of caching keeps that cheap.
CACHE_SECONDS = 60
NDJSON = "application/fhir+ndjson"


def _public(ctx: Context) -> Context:
    return dataclasses.replace(ctx, principal=None)


def hospitals(ctx: Context, region: str | None) -> list[Hospital]:
    """The hospitals of the directory: those with the phone and full address the spec
    requires of a Location (one without is left out until its admin fills them in)."""
    stmt = (select(Hospital).join(Region, Region.id == Hospital.region_id)
            .where(Hospital.phone != "", Hospital.address != "", Hospital.postal_code != "",
                   Region.province != "").order_by(Hospital.id))
    if region:
        stmt = stmt.where(Region.code == region)
    return list(ctx.db.scalars(stmt))


def listable(h: Hospital) -> bool:
    """Whether a hospital has what a directory Location must carry."""
    return bool(h.phone and h.address and h.postal_code and h.region.province)


def manifest(ctx: Context, *, region: str | None, since: datetime | None,
             request_url: str) -> dict[str, Any]:
    """The bulk publication manifest: where the Location, Schedule and Slot files are."""
    common = {k: v for k, v in (("region", region),
                                ("_since", instant(since) if since else None)) if v}
    files = f"{ctx.base}/$bulk-publish"

    def url(name: str, **extra: object) -> str:
        query = urlencode({**common, **extra})
        return f"{files}/{name}.ndjson" + (f"?{query}" if query else "")

    output: list[dict[str, Any]] = [{"type": "Location", "url": url("Location")},
                                    {"type": "Schedule", "url": url("Schedule")}]
    listed = hospitals(ctx, region)
    days = ctx.db.execute(select(Schedule.hospital_id, Schedule.day).distinct().where(
        Schedule.hospital_id.in_([h.id for h in listed]), Schedule.end_at > ctx.now)).all()
    for h in listed:
        for week in sorted({week_of(day) for hid, day in days if hid == h.id}):
            output.append({"type": "Slot", "url": url("Slot", organization=h.id, week=week),
                           "extension": {"organization": [f"Organization/{h.id}"],
                                         "week": [week]}})
    return {"transactionTime": instant(ctx.now), "request": request_url, "output": output,
            "error": []}


def locations(ctx: Context, region: str | None) -> Iterator[dict[str, Any]]:
    """Each hospital's site with its phone and address (where the patient goes)."""
    for h in hospitals(ctx, region):
        yield fr.site_location(h)


def _schedule_changed(since: datetime) -> Any:
    return or_(Schedule.created_at > since, Schedule.status != "open")


def schedules(ctx: Context, region: str | None,
              since: datetime | None) -> Iterator[dict[str, Any]]:
    """Sessions still to come, each on its hospital's site (the Location file)."""
    ids = [h.id for h in hospitals(ctx, region)]
    stmt = (select(Schedule).where(Schedule.hospital_id.in_(ids), Schedule.end_at > ctx.now)
            .order_by(Schedule.start_at, Schedule.id))
    if since is not None:
        stmt = stmt.where(_schedule_changed(since))
    for s in ctx.db.scalars(stmt):
        out = fr.schedule(s, department_of(ctx, s.department_id), doctor_of(ctx, s))
        out["actor"] = [fr.ref("Location", fr.site_id(s.hospital_id))]
        yield out


def _slot_changed(ctx: Context, hospital_id: int, since: datetime) -> Any:
    """A slot whose published state may differ from what it was at ``since``: its session
    is new or not open, its pool opened or returned, its day's overnight pause began or
    ended, a hold ran out, or an appointment on it was made, booked or cancelled."""
    now = ctx.now
    touched = exists().where(Appointment.slot_id == Slot.id,
                             or_(Appointment.created_at > since, Appointment.booked_at > since,
                                 Appointment.cancelled_at > since))
    return or_(_schedule_changed(since), Slot.release_at.between(since, now),
               Slot.return_at.between(since, now), Slot.held_until.between(since, now),
               scheduling_service.overnight_pause_turned(ctx.db, since, now, {hospital_id}),
               touched)


_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


def week_of(day: date) -> str:
    """The ISO week of a clinic day, ``2026-W51``: one Slot file per hospital and week."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_days(week: str) -> tuple[date, date]:
    """The Monday and the Sunday of an ISO week; raises InvalidSearch."""
    try:
        written = _WEEK.fullmatch(week)
        if written is None:  # int() alone would take full-width digits and white space
            raise ValueError(week)
        monday = date.fromisocalendar(int(written[1]), int(written[2]), 1)
    except ValueError as exc:
        raise InvalidSearch("参数week应为 YYYY-Www，如 2026-W51",
                            detail=[{"field": "week"}]) from exc
    check_year(monday.year, "week")
    return monday, monday + timedelta(days=6)


def slots(ctx: Context, hospital_id: int, week: str | None,
          since: datetime | None) -> Iterator[dict[str, Any]]:
    """The hospital's slots to come (of one ISO week if given), ``free`` or ``busy`` as the
    public sees them: ``busy`` also while the hospital pauses booking of their day."""
    days = week_days(week) if week is not None else None  # a bad week is refused first
    public = _public(ctx)
    h = ctx.db.get(Hospital, hospital_id)
    if h is None or not listable(h):
        return
    status = slot_status(ctx.now, bookable(public, {hospital_id}))
    stmt = (select(Slot, Schedule, status).join(Schedule, Slot.schedule_id == Schedule.id)
            .where(Schedule.hospital_id == hospital_id, Slot.start_at > ctx.now)
            .order_by(Slot.start_at, Slot.id))
    if days is not None:
        stmt = stmt.where(Schedule.day >= days[0], Schedule.day <= days[1])
    if since is not None:
        stmt = stmt.where(_slot_changed(ctx, hospital_id, since))
    for row, s, state in ctx.db.execute(stmt).all():
        free = state == "free"
        extensions = fr.booking_extensions(ctx.site, s, h, doctor_of(ctx, s), row.id) \
            if free else None
        yield fr.slot(row, s, "free" if free else "busy", None, extensions)


def ndjson(resources: Iterable[dict[str, Any]]) -> str:
    """One minified JSON resource per line."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in resources)
