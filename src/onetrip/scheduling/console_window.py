"""The window desk (挂号窗口): find the patient by the document in hand, book a window or
priority slot for them (BK-5), check them in, mark a no-show (BK-6).

The patient is always found first (identity's staff search, one audit row per look-up);
the booking and the check-in then name that patient, so a slot can never be taken or
claimed for someone whose document was not presented.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now
from onetrip.errors import OnetripError
from onetrip.identity import pages as identity_pages
from onetrip.identity import service as identity_service
from onetrip.identity.rules import DOCUMENT_LABELS, DocumentType
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.scheduling import booking, queue, service
from onetrip.scheduling.console_pages import (
    Clerk,
    access_console_schedule,
    day_sessions,
    local_today,
    page,
    patient_view,
    patient_views,
    session_view,
    session_views,
)
from onetrip.scheduling.errors import NotCancellable
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Channel, Pool, PoolTimer, effective_pool
from onetrip.web import link_int

router = APIRouter(prefix="/console/window", include_in_schema=False)

FIELD_OF = {"document": "document_number", "phone": "phone", "name": "name"}


def _patient_panel(db: Session, principal: Principal, hospital: Hospital, patient_id: int,
                   now: datetime) -> dict[str, Any]:
    """The patient at the desk and their appointments here from today on (one audit row)."""
    patient = identity_service.access_patient(db, principal, patient_id,
                                              action="console.patient")
    today = local_today(now)
    mine = [a for a in booking.list_appointments(db, patient_id=patient.id)
            if a.hospital_id == hospital.id and a.day >= today]
    mine.sort(key=lambda a: a.start_at)
    views = {v.schedule.id: v for v in session_views(
        db, [service.access_schedule(db, a.schedule_id) for a in mine], now)}
    _policy, rule = service.policy_for(db, hospital.id)
    # BK-6: a no-show restriction stops online booking only; the clerk tells the patient why.
    restriction = booking.restriction_of(db, patient_id=patient.id, hospital_id=hospital.id,
                                         rule=rule, now=now)
    return {"patient": patient_view(db, patient.id), "appointments": mine,
            "appointment_sessions": views, "restriction": restriction}


def _window_ctx(db: Session, principal: Principal, now: datetime, *, day: str = "",
                department: str = "", patient: int | None = None) -> dict[str, Any]:
    ctx = day_sessions(db, principal, now, day=day, department=department)
    ctx.update({
        "today": local_today(now), "day_error": ctx.pop("error"),
        "doc_types": list(DocumentType), "doc_labels": DOCUMENT_LABELS,
        "values": {"by": "document", "document_type": DocumentType.resident_id_card.value},
        "errors": {}, "results": None, "patient": None, "appointments": [],
    })
    if patient is not None:
        ctx.update(_patient_panel(db, principal, ctx["hospital"], patient, now))
    return ctx


def _desk_flash(db: Session, ctx: dict[str, Any], flash: str, appointment: str) -> str | None:
    """The check-in or cancellation just done, read from the appointment the link names: it
    must be this hospital's, of the patient at the desk, and in the state the message tells.
    A link brings a code and an id, never the words (anyone can send a link)."""
    appt_id = link_int(appointment)
    appt = db.get(Appointment, appt_id) if appt_id is not None else None
    shown = ctx["patient"]
    if appt is None or shown is None or appt.patient_id != shown.id \
            or appt.hospital_id != ctx["hospital"].id:
        return None
    if flash == "checked_in" and appt.status == "arrived":
        entry = queue.position_of(db, appointment=appt)
        return f"已报到，前面还有{entry.position}人" if entry is not None else "已报到"
    if flash == "cancelled" and appt.status == "cancelled":
        return "已退号（已过免费退号时间，计入失约记录）" if appt.penalty_event else "已退号"
    return None


@router.get("")
def window_page(request: Request, db: DbSession, principal: Clerk, now: Now,
                day: Annotated[str, Query(max_length=20)] = "",
                department: Annotated[str, Query(max_length=40)] = "",
                patient: Annotated[int | None, Query(gt=0)] = None,
                booked: Annotated[int | None, Query(gt=0)] = None,
                flash: str = "", appointment: str = "") -> Response:
    """The desk: the patient at the window (if found) and the day's sessions."""
    ctx = _window_ctx(db, principal, now, day=day, department=department, patient=patient)
    if booked is not None:
        appt = booking.access_appointment(db, principal, booked)
        ctx["booked"] = appt
        ctx["booked_session"] = session_view(db, appt.schedule, now)
    name = "console_window_sessions.html" if request.headers.get("hx-target") == "sessions" \
        else "console_window.html"
    return page(request, name, principal,
                {**ctx, "flash": _desk_flash(db, ctx, flash, appointment)},
                status_code=422 if ctx["day_error"] else 200)


@router.post("/find")
def find_patient(request: Request, db: DbSession, principal: Clerk, now: Now,
                 by: Annotated[str, Form(pattern="^(document|phone|name)$")] = "document",
                 document_type: Annotated[str, Form(max_length=40)] = "resident_id_card",
                 document_number: Annotated[str, Form(max_length=80)] = "",
                 phone: Annotated[str, Form(max_length=24)] = "",
                 name: Annotated[str, Form(max_length=50)] = "",
                 day: Annotated[str, Form(max_length=20)] = "") -> Response:
    """Identity's staff search (exact by document or phone, by name prefix); a POST so the
    numbers never reach a URL or an access log."""
    ctx = _window_ctx(db, principal, now, day=day)
    ctx["values"] = {"by": by, "document_type": document_type, "name": name}
    field = FIELD_OF[by]
    typed = {"document": document_number, "phone": phone, "name": name}[by]
    if not typed.strip():
        ctx["errors"] = {field: {"document": "请输入或刷卡读取证件号码", "phone": "请输入手机号",
                                 "name": "请输入姓名"}[by]}
    else:
        results, ctx["errors"] = identity_pages.search_by_form(
            db, principal, by=by, document_type=document_type,
            document_number=document_number, phone=phone, name=name)
        if results is not None:
            ctx["results"] = [patient_view(db, p.id) for p in results]
    if ctx["errors"]:
        ctx["values"] |= {"document_number": document_number, "phone": phone}
    name_ = "console_window_find.html" if request.headers.get("hx-request") == "true" \
        else "console_window.html"
    return page(request, name_, principal, ctx, status_code=422 if ctx["errors"] else 200)


def _slot_pool(slot: Slot, now: datetime) -> str:
    timer = PoolTimer(slot.release_at, slot.return_at,
                      Pool(slot.return_pool) if slot.return_pool else None)
    pool = effective_pool(Pool(slot.pool), timer, now)
    return (pool or Pool(slot.pool)).value


def _session_ctx(db: Session, principal: Principal, schedule_id: int, now: datetime,
                 patient: int | None) -> dict[str, Any]:
    schedule = access_console_schedule(db, principal, schedule_id)
    hospital = db.get_one(Hospital, schedule.hospital_id)
    policy, _rule = service.policy_for(db, hospital.id)
    reopens = service.reopens_at(policy, schedule.day, now)
    slots = service.free_slots(db, schedule=schedule, channel=Channel.window, now=now) \
        if schedule.status != "stopped" and reopens is None else []
    roster = queue.roster(db, schedule_id=schedule.id)
    ctx: dict[str, Any] = {
        "hospital": hospital, "view": session_view(db, schedule, now), "reopens": reopens,
        "slots": [(s, _slot_pool(s, now)) for s in slots], "roster": roster,
        "people": patient_views(db, {a.patient_id for a in roster}),
        "patient": None, "now": now,
        # BK-6: a no-show only once a late patient can no longer check in
        "noshow_from": queue.check_in_closes_at(schedule, policy),
    }
    if patient is not None:
        ctx["patient"] = patient_view(db, identity_service.access_patient(
            db, principal, patient, action="console.patient").id)
    return ctx


#: Flash codes of the session page; a link brings a code, never the words shown.
SESSION_FLASHES = {"noshow": "已登记爽约"}


@router.get("/schedules/{schedule_id}")
def session_page(schedule_id: int, request: Request, db: DbSession, principal: Clerk,
                 now: Now, patient: Annotated[int | None, Query(gt=0)] = None,
                 flash: str = "") -> Response:
    """One session: its free window-channel slots to book, and who is booked."""
    ctx = _session_ctx(db, principal, schedule_id, now, patient)
    return page(request, "console_window_session.html", principal,
                {**ctx, "flash": SESSION_FLASHES.get(flash)})


@router.post("/book")
def book(request: Request, db: DbSession, principal: Clerk, now: Now,
         schedule_id: Annotated[int, Form(gt=0)], patient_id: Annotated[int, Form(gt=0)],
         slot_id: Annotated[int, Form(gt=0)]) -> Response:
    """Book the chosen slot for the patient at the window (window channel, BK-5)."""
    access_console_schedule(db, principal, schedule_id)
    try:
        appt = booking.book(db, principal=principal, patient_id=patient_id,
                            channel=Channel.window, slot_id=slot_id, now=now)
    except OnetripError as exc:
        if exc.http_status in (401, 403) and exc.code != "channel_not_allowed":
            raise
        ctx = _session_ctx(db, principal, schedule_id, now, patient_id)
        return page(request, "console_window_session.html", principal,
                    {**ctx, "error": exc.text, "error_code": exc.code},
                    status_code=exc.http_status)
    query = urlencode({"patient": patient_id, "booked": appt.id,
                       "day": appt.day.isoformat()})
    return RedirectResponse(f"/console/window?{query}", status_code=303)


def _back_to_patient(appt: Appointment, flash: str) -> RedirectResponse:
    query = urlencode({"patient": appt.patient_id, "flash": flash, "appointment": appt.id})
    return RedirectResponse(f"/console/window?{query}", status_code=303)


def _desk_refused(request: Request, db: Session, principal: Principal, now: datetime,
                  patient_id: int, exc: OnetripError) -> Response:
    """The desk again with the refusal on top; a refused access is not shown but raised."""
    if exc.http_status in (401, 403):
        raise exc
    ctx = _window_ctx(db, principal, now, patient=patient_id)
    return page(request, "console_window.html", principal,
                {**ctx, "error": exc.text, "error_code": exc.code}, status_code=exc.http_status)


@router.post("/appointments/{appointment_id}/check-in")
def check_in(appointment_id: int, request: Request, db: DbSession, principal: Clerk,
             now: Now, patient_id: Annotated[int, Form(gt=0)]) -> Response:
    """报到 for the patient whose document was presented (the booking cannot be transferred)."""
    try:
        appt = queue.check_in(db, principal=principal, appointment_id=appointment_id, now=now,
                              patient_id=patient_id)
    except OnetripError as exc:
        return _desk_refused(request, db, principal, now, patient_id, exc)
    return _back_to_patient(appt, "checked_in")


@router.post("/appointments/{appointment_id}/cancel")
def cancel(appointment_id: int, request: Request, db: DbSession, principal: Clerk, now: Now,
           patient_id: Annotated[int, Form(gt=0)]) -> Response:
    """退号 at the window for the patient at the desk; after the free-cancellation deadline
    it counts as a late cancellation (BK-6), and the slot goes back to its pool."""
    appt = booking.access_appointment(db, principal, appointment_id)
    try:
        if appt.patient_id != patient_id:
            raise NotCancellable("证件与预约人不符，请本人或代理人持证件办理",
                                 detail={"reason": "not_owner"})
        booking.cancel(db, principal=principal, appointment_id=appointment_id, now=now,
                       reason="窗口退号")
    except OnetripError as exc:
        return _desk_refused(request, db, principal, now, patient_id, exc)
    return _back_to_patient(appt, "cancelled")


@router.post("/appointments/{appointment_id}/noshow")
def mark_noshow(appointment_id: int, request: Request, db: DbSession, principal: Clerk,
                now: Now) -> Response:
    """爽约: a booked patient who never checked in, once the session took its last check-in."""
    try:
        appt = queue.mark_noshow(db, principal=principal, appointment_id=appointment_id,
                                 now=now)
    except OnetripError as exc:
        if exc.http_status in (401, 403) or exc.code == "appointment_not_found":
            raise
        appt = booking.access_appointment(db, principal, appointment_id)
        ctx = _session_ctx(db, principal, appt.schedule_id, now, None)
        return page(request, "console_window_session.html", principal,
                    {**ctx, "error": exc.text, "error_code": exc.code},
                    status_code=exc.http_status)
    return RedirectResponse(f"/console/window/schedules/{appt.schedule_id}?"
                            + "flash=noshow", status_code=303)
