"""The patient's own portal pages: my appointments (upcoming, past, cancelled) with cancel,
the confirmation of one visit, arrival check-in and the live queue (BK-11), rebooking offers
after a stop-clinic and waitlist offers (BK-6), and the no-show restriction notice.

Every page acts for the patients of the signed-in account only (ID-6); each read of a
patient's appointments leaves an audit row through ``identity.service.access_patient``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now, OptionalPrincipal
from onetrip.errors import OnetripError
from onetrip.identity import service as identity_service
from onetrip.identity.rules import RELATIONSHIP_LABELS
from onetrip.identity.service import Principal
from onetrip.numbers import parse_id
from onetrip.org.models import Hospital
from onetrip.scheduling import booking, penalties, queue, service, stopclinic, waitlist
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.page_booking import local_day, visit_of
from onetrip.scheduling.portal_pages import (
    Account,
    account_of,
    portal_channel,
    schedule_context,
    times_page,
    to_sign_in,
)
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)

TABS = {"upcoming": "待就诊", "past": "已完成", "cancelled": "已取消"}
FLASHES = {"cancelled": "已取消预约，号源已释放", "checked_in": "报到成功，请留意叫号",
           "rebooked": "改约成功", "declined": "已放弃改约，挂号费将原路退还",
           "waiting": "已加入候补，有号源释放时将通知您", "booked": "预约成功",
           "left": "已取消候补"}
_QUEUE_POLL_SECONDS = 15


def _tab_of(appt: Appointment, today: Any) -> str:
    if appt.status in ("cancelled", "expired"):
        return "cancelled"
    if appt.status in ("fulfilled", "noshow") or appt.day < today:
        return "past"
    return "upcoming"


def _options(db: Session, slot_ids: list[int]) -> list[dict[str, Any]]:
    out = []
    for slot_id in slot_ids:
        slot = db.get(Slot, slot_id)
        if slot is not None:
            out.append({"slot": slot, **schedule_context(db, slot.schedule)})
    return out


def _restrictions(db: Session, patient_ids: list[int], now: datetime) -> list[dict[str, Any]]:
    """BK-6: every restriction in force for the account's patients, with reason and end.

    Weighed as the booking engine weighs them before refusing an online booking: the whole
    history, outpatient and recorded by other domains (a missed exam, EX-4), under each
    hospital's own rule, at every hospital whose rule may weigh it (its region's too), so
    the page never says less than the engine enforces."""
    histories = penalties.penalty_histories(db, set(patient_ids))
    region_hospitals: dict[int, set[int]] = {}
    out = []
    for patient_id in patient_ids:
        history = histories.get(patient_id, [])
        hospital_ids = penalties.hospitals_weighing(db, region_hospitals, history)
        policies = service.policies_for(db, hospital_ids)
        for hospital_id in sorted(hospital_ids):
            found = penalties.restriction_in(db, region_hospitals, history,
                                             hospital_id=hospital_id,
                                             rule=policies[hospital_id][1], now=now)
            if found is not None:
                out.append({"patient_id": patient_id, "restriction": found,
                            "hospital": db.get_one(Hospital, hospital_id)})
    return out


def _appointments_page(request: Request, db: Session, me: Principal, now: datetime, tab: str,
                       flash: str | None = None, error: str | None = None,
                       status_code: int = 200) -> Response:
    assert me.account_id is not None
    members = identity_service.family_of(db, me.account_id)
    for m in members:
        identity_service.access_patient(db, me, m.patient_id, action="appointment.read")
    ids = [m.patient_id for m in members]
    today = local_day(now)
    appts = [a for pid in ids for a in booking.list_appointments(db, patient_id=pid)]
    counts = dict.fromkeys(TABS, 0)
    for a in appts:
        counts[_tab_of(a, today)] += 1
    tab = tab if tab in TABS else "upcoming"
    chosen = sorted((a for a in appts if _tab_of(a, today) == tab),
                    key=lambda a: a.start_at, reverse=tab != "upcoming")
    offers = [o for pid in ids for o in stopclinic.offers_for(db, patient_id=pid)
              if o.status == "open"]
    entries = [e for pid in ids for e in waitlist.entries_for(db, patient_id=pid)]
    waits = [e for e in entries
             if e.status == "waiting" or (e.status == "offered" and e.offer_expires_at
                                          and e.offer_expires_at > now)]
    # Waits a stop-clinic ended (BK-6), shown until the session would have taken place.
    closed = [{"entry": e, **schedule_context(db, s)} for e in entries if e.status == "closed"
              for s in [service.access_schedule(db, e.schedule_id)] if s.end_at > now]
    return render_page(request, "portal_my_appointments.html", {
        "tabs": TABS, "tab": tab, "counts": counts,
        "visits": [visit_of(db, a, now) for a in chosen],
        "members": {m.patient_id: m for m in members}, "labels": RELATIONSHIP_LABELS,
        "offers": [{"offer": o, "old": visit_of(db, db.get_one(Appointment, o.appointment_id),
                                                now),
                    "options": _options(db, list(o.slot_ids))} for o in offers],
        "waits": [{"entry": e, **schedule_context(db, service.access_schedule(db, e.schedule_id)),
                   "offered": _options(db, [e.offered_slot_id]) if e.offered_slot_id else [],
                   "position": waitlist.position(db, e)} for e in waits],
        "closed_waits": closed,
        "restrictions": _restrictions(db, ids, now), "flash": FLASHES.get(flash or ""),
        "error": error}, status_code=status_code)


@router.get("/me/appointments")
def my_appointments(request: Request, db: DbSession, now: Now, principal: OptionalPrincipal,
                    tab: str = "upcoming", flash: str | None = None) -> Response:
    me = account_of(principal)
    if me is None:
        return to_sign_in("/me/appointments")
    return _appointments_page(request, db, me, now, tab, flash)


def _queue_ctx(db: Session, appt: Appointment, now: datetime) -> dict[str, Any]:
    entry = queue.position_of(db, appointment=appt, now=now) \
        if appt.status == "arrived" else None
    return {"appt": appt, "entry": entry, "poll": _QUEUE_POLL_SECONDS,
            "wait_minutes": int(entry.wait.total_seconds() // 60) if entry else 0}


def _appointment_page(request: Request, db: Session, me: Principal, appointment_id: int,
                      now: datetime, flash: str | None = None, error: str | None = None,
                      status_code: int = 200, booked: bool = False) -> Response:
    appt = booking.access_appointment(db, me, appointment_id)
    patient = identity_service.get_patient(db, appt.patient_id)
    return render_page(request, "portal_appointment.html", {
        "v": visit_of(db, appt, now), "patient": patient,
        "masked": identity_service.masked_id_number, "flash": FLASHES.get(flash or ""),
        "error": error, "booked": booked, **_queue_ctx(db, appt, now)},
        status_code=status_code)


@router.get("/me/appointments/{appointment_id}")
def appointment_page(appointment_id: int, request: Request, db: DbSession, now: Now,
                     principal: OptionalPrincipal, booked: int = 0,
                     flash: str | None = None) -> Response:
    """The confirmation: time, place, fee, how to check in, the cancellation deadline."""
    me = account_of(principal)
    if me is None:
        return to_sign_in(f"/me/appointments/{appointment_id}")
    return _appointment_page(request, db, me, appointment_id, now, flash, booked=bool(booked))


@router.get("/me/appointments/{appointment_id}/queue")
def queue_fragment(appointment_id: int, request: Request, db: DbSession,
                   principal: OptionalPrincipal, now: Now) -> Response:
    """BK-11: the live place in the queue, polled by htmx while the patient waits."""
    me = account_of(principal)
    if me is None:
        return to_sign_in(f"/me/appointments/{appointment_id}")
    appt = booking.access_appointment(db, me, appointment_id)
    return render_page(request, "portal_queue.html", _queue_ctx(db, appt, now))


def _act(request: Request, db: Session, me: Principal, appointment_id: int, now: datetime,
         fn: Any, flash: str) -> Response:
    try:
        with db.begin_nested():
            fn()
    except OnetripError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        return _appointment_page(request, db, me, appointment_id, now, error=exc.text,
                                 status_code=exc.http_status)
    return RedirectResponse(f"/me/appointments/{appointment_id}?flash={flash}",
                            status_code=303)


@router.post("/me/appointments/{appointment_id}/cancel")
def cancel(appointment_id: int, request: Request, db: DbSession, now: Now, me: Account,
           reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    """BK-6: free of penalty until the deadline; later the page says to go to the window."""
    return _act(request, db, me, appointment_id, now, lambda: booking.cancel(
        db, principal=me, appointment_id=appointment_id, now=now,
        reason=reason.strip() or "患者在线取消"), "cancelled")


@router.post("/me/appointments/{appointment_id}/check-in")
def check_in(appointment_id: int, request: Request, db: DbSession, now: Now,
             me: Account) -> Response:
    """Arrival check-in from the phone, inside the check-in window."""
    return _act(request, db, me, appointment_id, now, lambda: queue.check_in(
        db, principal=me, appointment_id=appointment_id, now=now), "checked_in")


# --- offers: rebooking after a stop-clinic, the waitlist ------------------------------------


def _offer_action(request: Request, db: Session, me: Principal, now: datetime,
                  fn: Any) -> Response:
    try:
        with db.begin_nested():
            target = fn()
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        return _appointments_page(request, db, me, now, "upcoming", error=exc.text,
                                  status_code=exc.http_status)
    return RedirectResponse(target, status_code=303)


@router.post("/me/offers/{offer_id}/accept")
def accept_offer(offer_id: int, request: Request, db: DbSession, now: Now, me: Account,
                 slot_id: Annotated[int, Form(gt=0)]) -> Response:
    """BK-6: one tap takes one of the offered slots after a stop-clinic."""
    def accept() -> str:
        appt = stopclinic.accept_offer(db, principal=me, offer_id=offer_id, slot_id=slot_id,
                                       now=now)
        return f"/me/appointments/{appt.id}?flash=rebooked"

    return _offer_action(request, db, me, now, accept)


@router.post("/me/offers/{offer_id}/decline")
def decline_offer(offer_id: int, request: Request, db: DbSession, now: Now,
                  me: Account) -> Response:
    """Decline the rebooking: the held slot is freed and the fee stays flagged for refund."""
    def decline() -> str:
        stopclinic.decline_offer(db, principal=me, offer_id=offer_id, now=now)
        return "/me/appointments?flash=declined"

    return _offer_action(request, db, me, now, decline)


@router.post("/me/waitlist")
def join_waitlist(request: Request, db: DbSession, now: Now, me: Account,
                  schedule_id: Annotated[int, Form(gt=0)],
                  patient_id: Annotated[str, Form(max_length=12)] = "") -> Response:
    """候补 for a full session; the freed slot is offered to the first in line."""
    patient = parse_id(patient_id)
    if patient is None:
        return times_page(request, db, now, me, schedule_id,
                          errors={"patient_id": "请选择就诊人"}, status_code=422)
    try:
        with db.begin_nested():
            waitlist.join(db, principal=me, patient_id=patient,
                          schedule_id=schedule_id, channel=portal_channel(request), now=now)
    except OnetripError as exc:
        if exc.http_status == 401:
            raise
        return times_page(request, db, now, me, schedule_id,
                          errors={"patient_id": exc.text}, status_code=exc.http_status)
    return RedirectResponse("/me/appointments?flash=waiting", status_code=303)


@router.post("/me/waitlist/{entry_id}/cancel")
def leave_waitlist(entry_id: int, request: Request, db: DbSession, now: Now,
                   me: Account) -> Response:
    """取消候补 (or pass on a slot offered): the next in line gets the offer."""
    def leave() -> str:
        waitlist.leave(db, principal=me, entry_id=entry_id, now=now)
        return "/me/appointments?flash=left"

    return _offer_action(request, db, me, now, leave)


def _booked_path(appointment_id: int) -> str:
    return f"/me/appointments/{appointment_id}?flash=booked"


@router.post("/me/waitlist/{entry_id}/accept")
def accept_waitlist_offer(entry_id: int, request: Request, db: DbSession, now: Now,
                          me: Account) -> Response:
    """Take the slot the waitlist offers before the offer expires."""
    return _offer_action(request, db, me, now, lambda: _booked_path(
        waitlist.accept(db, principal=me, entry_id=entry_id, now=now).id))

