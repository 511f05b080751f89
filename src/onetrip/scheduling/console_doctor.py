"""The consulting room (诊室叫号): a session's queue, live, and "call next" (BK-11).

The queue panel refreshes itself every few seconds through htmx (``hx-trigger="every"``),
so patients checked in at the window or kiosk appear without reloading the page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.scheduling import queue
from onetrip.scheduling.console_pages import (
    Doctor,
    access_console_schedule,
    day_sessions,
    page,
    patient_views,
    session_view,
)

router = APIRouter(prefix="/console/queue", include_in_schema=False)

#: How often the open queue page asks for changes.
REFRESH_SECONDS = 5


@router.get("")
def sessions_page(request: Request, db: DbSession, principal: Doctor, now: Now,
                  day: Annotated[str, Query(max_length=20)] = "",
                  department: Annotated[str, Query(max_length=40)] = "",
                  hospital: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Today's sessions of the hospital with how many are waiting; the doctor picks theirs."""
    ctx = day_sessions(db, principal, now, day=day, department=department, hospital=hospital)
    ctx["waiting"] = {v.schedule.id: len(queue.queue_for(db, schedule_id=v.schedule.id))
                      for v in ctx["sessions"]}
    return page(request, "console_queue_list.html", principal, ctx,
                status_code=422 if ctx["error"] else 200)


def _panel_ctx(db: Session, principal: Principal, schedule_id: int,
               now: datetime) -> dict[str, Any]:
    schedule = access_console_schedule(db, principal, schedule_id)
    entries = queue.queue_for(db, schedule_id=schedule.id)
    current = queue.in_room(db, schedule_id=schedule.id)
    roster = queue.roster(db, schedule_id=schedule.id)
    ids = {e.appointment.patient_id for e in entries} | {a.patient_id for a in roster}
    counts = {s: sum(1 for a in roster if a.status == s)
              for s in ("booked", "arrived", "fulfilled", "noshow")}
    return {"view": session_view(db, schedule, now), "entries": entries, "current": current,
            "people": patient_views(db, ids), "counts": counts, "now": now,
            "hospital": db.get_one(Hospital, schedule.hospital_id),
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
