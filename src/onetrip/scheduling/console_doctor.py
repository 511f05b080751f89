"""The consulting room (诊室叫号): a session's queue, live, "call next" and "pass over"
(过号: the patient called did not come in and checks in again) (BK-11).

The queue panel refreshes itself every few seconds through htmx (``hx-trigger="every"``),
so patients checked in at the window or kiosk appear without reloading the page.

A doctor whose account is linked to a practitioner opens straight onto their own session
of the moment (their own, or one they substitute for): the one running now or still with
patients waiting after its planned end, else the next, else the day's last. The list of
their department's other sessions stays one click away (``?all=1``), for a doctor who
covers a colleague's room; other departments are refused.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now
from onetrip.errors import OnetripError
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.scheduling import queue, scope, service
from onetrip.scheduling.console_pages import (
    Doctor,
    access_console_schedule,
    day_sessions,
    local_today,
    page,
    patient_views,
    scope_ctx,
    session_view,
    session_views,
)
from onetrip.scheduling.models import Schedule

router = APIRouter(prefix="/console/queue", include_in_schema=False)

#: How often the open queue page asks for changes.
REFRESH_SECONDS = 5


def own_sessions(db: Session, principal: Principal, day: date) -> list[Schedule]:
    """A linked doctor's sessions of a day: their own and those they substitute for (not
    the ones handed to a substitute, nor stopped ones), earliest first."""
    if principal.practitioner_id is None or principal.hospital_id is None:
        return []
    work = scope.work_scope(db, principal)
    return [s for s in service.list_schedules(db, hospital=db.get_one(
        Hospital, principal.hospital_id), day=day) if work.is_own(s) and s.status != "stopped"]


def session_of_the_moment(sessions: list[Schedule], now: datetime, *,
                          waiting: Collection[int] = ()) -> Schedule | None:
    """The earliest session running now or past its end with patients still ``waiting`` in
    it (a doctor running late stays with them), else the next one, else the day's last."""
    return next((s for s in sessions if s.end_at > now or s.id in waiting),
                sessions[-1] if sessions else None)


@router.get("")
def sessions_page(request: Request, db: DbSession, principal: Doctor, now: Now,
                  day: Annotated[str, Query(max_length=20)] = "",
                  department: Annotated[str, Query(max_length=40)] = "",
                  hospital: Annotated[str | None, Query(max_length=40)] = None,
                  show_all: Annotated[str, Query(alias="all", max_length=1)] = "") -> Response:
    """A linked doctor goes straight to their session of the moment; otherwise the day's
    sessions (a linked doctor's departments only) with how many are waiting."""
    if not (day or department or show_all):
        own = own_sessions(db, principal, local_today(now))
        # Past its end, a session keeps the room while patients wait in it and check-in is
        # still taken (one who checked in and left does not hold the doctor there all day).
        running_late = [s.id for s in own if s.end_at <= now < queue.check_in_closes_at(
            s, service.policy_for(db, s.hospital_id)[0])]
        mine = session_of_the_moment(own, now, waiting=queue.sessions_with_waiting(
            db, running_late))
        if mine is not None:
            return RedirectResponse(f"/console/queue/{mine.id}", status_code=303)
    ctx = day_sessions(db, principal, now, day=day, department=department, hospital=hospital)
    ctx["waiting"] = {v.schedule.id: len(queue.queue_for(db, schedule_id=v.schedule.id))
                      for v in ctx["sessions"]}
    work = scope.work_scope(db, principal)
    ctx["mine"] = [v for v in ctx["sessions"] if work.is_own(v.schedule)]
    ctx["sessions"] = [v for v in ctx["sessions"] if v not in ctx["mine"]]
    return page(request, "console_queue_list.html", principal, ctx,
                status_code=422 if ctx["error"] else 200)


def _panel_ctx(db: Session, principal: Principal, schedule_id: int,
               now: datetime) -> dict[str, Any]:
    schedule = access_console_schedule(db, principal, schedule_id)
    entries = queue.queue_for(db, schedule_id=schedule.id, now=now)
    current = queue.in_room(db, schedule_id=schedule.id)
    roster = queue.roster(db, schedule_id=schedule.id)
    ids = {e.appointment.patient_id for e in entries} | {a.patient_id for a in roster}
    counts = {s: sum(1 for a in roster if a.status == s)
              for s in ("booked", "arrived", "fulfilled", "noshow")}
    mine = own_sessions(db, principal, schedule.day)
    return {**scope_ctx(db, principal),
            "view": session_view(db, schedule, now), "entries": entries, "current": current,
            "people": patient_views(db, ids), "counts": counts, "now": now,
            "hospital": db.get_one(Hospital, schedule.hospital_id),
            "mine": session_views(db, mine, now) if len(mine) > 1 else [],
            "refresh": REFRESH_SECONDS}


@router.get("/{schedule_id}")
def queue_page(schedule_id: int, request: Request, db: DbSession, principal: Doctor,
               now: Now) -> Response:
    return page(request, "console_queue.html", principal,
                _panel_ctx(db, principal, schedule_id, now))


@router.get("/{schedule_id}/panel")
def queue_panel(schedule_id: int, request: Request, db: DbSession, principal: Doctor,
                now: Now) -> Response:
    """The live part of the page, polled by htmx."""
    return page(request, "console_queue_panel.html", principal,
                _panel_ctx(db, principal, schedule_id, now))


@router.post("/{schedule_id}/call-next")
def call_next(schedule_id: int, request: Request, db: DbSession, principal: Doctor,
              now: Now) -> Response:
    """Finish the patient in the room and call the next one in (a call notice is queued)."""
    access_console_schedule(db, principal, schedule_id)
    called = queue.call_next(db, principal=principal, schedule_id=schedule_id, now=now)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/console/queue/{schedule_id}", status_code=303)
    ctx = _panel_ctx(db, principal, schedule_id, now)
    ctx["notice"] = "已叫号" if called else "候诊队列已空"
    return page(request, "console_queue_panel.html", principal, ctx)


@router.post("/{schedule_id}/pass-over")
def pass_over(schedule_id: int, request: Request, db: DbSession, principal: Doctor, now: Now,
              appointment_id: Annotated[int, Form(gt=0)]) -> Response:
    """过号: the patient called in did not come; they check in again at the triage desk or
    the kiosk and queue behind (BK-11)."""
    access_console_schedule(db, principal, schedule_id)
    try:
        queue.pass_over(db, principal=principal, schedule_id=schedule_id, now=now,
                        appointment_id=appointment_id)
    except OnetripError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        # The panel says why in place (the full page for a browser without htmx).
        name = "console_queue_panel.html" if request.headers.get("hx-request") == "true" \
            else "console_queue.html"
        return page(request, name, principal,
                    {**_panel_ctx(db, principal, schedule_id, now), "refused": exc.text},
                    status_code=exc.http_status)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/console/queue/{schedule_id}", status_code=303)
    ctx = _panel_ctx(db, principal, schedule_id, now)
    ctx["notice"] = "已过号：患者回来后须重新报到，再排队候诊"
    return page(request, "console_queue_panel.html", principal, ctx)
