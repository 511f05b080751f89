"""停诊/替诊 from the console (BK-6): stop a session or name a substitute, then see every
affected patient and what each was offered. A department admin works on its departments'
sessions only and hands them only to its departments' doctors.

Stopping cancels each appointment with a rebooking offer that holds the nearest equivalent
slot (``stopclinic.stop_clinic``); the page lists the offers of the session so the desk can
answer the phone calls that follow. A substitute keeps every appointment as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now
from onetrip.errors import OnetripError
from onetrip.identity.service import Principal
from onetrip.numbers import parse_id
from onetrip.org import service as org_service
from onetrip.org.models import Hospital
from onetrip.scheduling import queue, scope, service, stopclinic
from onetrip.scheduling.console_pages import (
    SessionView,
    Stopper,
    access_console_schedule,
    day_sessions,
    page,
    patient_views,
    scope_ctx,
    session_view,
    session_views,
)
from onetrip.scheduling.models import Appointment, Slot

router = APIRouter(prefix="/console/sessions", include_in_schema=False)


@router.get("")
def sessions_page(request: Request, db: DbSession, principal: Stopper, now: Now,
                  day: Annotated[str, Query(max_length=20)] = "",
                  department: Annotated[str, Query(max_length=40)] = "",
                  hospital: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """A day's sessions with their status, to pick the one to stop or hand over."""
    ctx = day_sessions(db, principal, now, day=day, department=department, hospital=hospital)
    return page(request, "console_sessions.html", principal, ctx,
                status_code=422 if ctx["error"] else 200)


def _offer_rows(db: Session, schedule_id: int, now: datetime) -> list[dict[str, Any]]:
    """Each affected patient's offer with the offered sessions spelled out."""
    offers = stopclinic.offers_of_schedule(db, schedule_id=schedule_id)
    slot_ids = {i for o in offers for i in o.slot_ids}
    slots = {s.id: s for s in (db.get_one(Slot, i) for i in slot_ids)}
    views = {v.schedule.id: v for v in session_views(
        db, [service.access_schedule(db, sid) for sid in {s.schedule_id for s in slots.values()}],
        now)}
    people = patient_views(db, {o.patient_id for o in offers})
    rows = []
    for o in offers:
        appt = db.get_one(Appointment, o.appointment_id)
        rows.append({"offer": o, "appointment": appt, "patient": people.get(o.patient_id),
                     "options": [(slots[i], views[slots[i].schedule_id]) for i in o.slot_ids
                                 if i in slots]})
    return rows


def _session_ctx(db: Session, principal: Principal, schedule_id: int,
                 now: datetime) -> dict[str, Any]:
    schedule = access_console_schedule(db, principal, schedule_id)
    hospital = db.get_one(Hospital, schedule.hospital_id)
    view: SessionView = session_view(db, schedule, now)
    roster = [a for a in queue.roster(db, schedule_id=schedule.id)
              if a.status in ("booked", "arrived")]
    managed = scope.managed_departments(db, principal)
    doctors = [p for p in org_service.list_practitioners(db, hospital=hospital)
               if p.id != schedule.practitioner_id
               and (managed is None or any(d.id in managed for d in p.departments))]
    same_dept = [p for p in doctors if any(d.id == schedule.department_id for d in p.departments)]
    return {**scope_ctx(db, principal), "hospital": hospital, "view": view, "roster": roster,
            "people": patient_views(db, {a.patient_id for a in roster}),
            "offers": _offer_rows(db, schedule.id, now) if schedule.status == "stopped" else [],
            "doctors": same_dept + [p for p in doctors if p not in same_dept],
            "errors": {}, "values": {}}


def _done_flash(ctx: dict[str, Any], flash: str) -> str | None:
    """What a stop or a substitute did, read from the session itself, and only if the session
    is in that state: a link names the action, never the words (anyone can send a link)."""
    view: SessionView = ctx["view"]
    if flash == "stopped" and view.schedule.status == "stopped":
        offers = [row["offer"] for row in ctx["offers"]]
        offered = sum(1 for o in offers if o.slot_ids)
        return f"已停诊：{len(offers)}位患者已通知，其中{offered}位已保留改约号源"
    if flash == "substituted" and view.schedule.status == "substituted" and view.substitute:
        return f"已安排{view.substitute}替诊，原预约保持不变"
    return None


@router.get("/{schedule_id}")
def session_page(schedule_id: int, request: Request, db: DbSession, principal: Stopper,
                 now: Now, flash: str = "") -> Response:
    ctx = _session_ctx(db, principal, schedule_id, now)
    return page(request, "console_stop.html", principal,
                {**ctx, "flash": _done_flash(ctx, flash)})


def _refused(request: Request, db: Session, principal: Principal, schedule_id: int,
             now: datetime, errors: dict[str, str], values: dict[str, str],
             status_code: int = 422, error: str = "") -> Response:
    ctx = _session_ctx(db, principal, schedule_id, now)
    return page(request, "console_stop.html", principal,
                {**ctx, "errors": errors, "values": values, "error": error},
                status_code=status_code)


@router.post("/{schedule_id}/stop")
def stop(schedule_id: int, request: Request, db: DbSession, principal: Stopper, now: Now,
         reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    """停诊: every booked patient is cancelled with offers (or a refund notice)."""
    access_console_schedule(db, principal, schedule_id)
    if not reason.strip():
        return _refused(request, db, principal, schedule_id, now,
                        {"reason": "请填写停诊原因，将通知每位患者"}, {"reason": reason})
    try:
        stopclinic.stop_clinic(db, principal=principal, schedule_id=schedule_id,
                               reason=reason.strip(), now=now)
    except OnetripError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        return _refused(request, db, principal, schedule_id, now, {"reason": exc.text},
                        {"reason": reason}, exc.http_status, exc.text)
    return RedirectResponse(f"/console/sessions/{schedule_id}?flash=stopped", status_code=303)


@router.post("/{schedule_id}/substitute")
def substitute(schedule_id: int, request: Request, db: DbSession, principal: Stopper, now: Now,
               practitioner_id: Annotated[str, Form(max_length=12)] = "",
               reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    """替诊: another doctor of the hospital takes the session; appointments stay."""
    access_console_schedule(db, principal, schedule_id)
    values = {"practitioner_id": practitioner_id, "sub_reason": reason}
    errors = {}
    doctor = parse_id(practitioner_id.strip())
    if doctor is None:
        errors["practitioner_id"] = "请选择替诊医生"
    if not reason.strip():
        errors["sub_reason"] = "请填写替诊原因"
    if errors or doctor is None:
        return _refused(request, db, principal, schedule_id, now, errors, values)
    try:
        stopclinic.substitute(db, principal=principal, schedule_id=schedule_id,
                              practitioner_id=doctor, reason=reason.strip(),
                              now=now)
    except OnetripError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        return _refused(request, db, principal, schedule_id, now,
                        {"practitioner_id": exc.text}, values, exc.http_status, exc.text)
    return RedirectResponse(f"/console/sessions/{schedule_id}?flash=substituted",
                            status_code=303)
