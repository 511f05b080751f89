"""Patient portal (H5, mobile first, works in WeChat's browser): hospital → department →
date → doctor → minute-precise slot → book for 本人 or a family member (BK-1, BK-3, BK-11).

The booking form carries a one-time token (the idempotency key) and passes the API's BK-8
gate; a refused booking is shown beside the field at fault and nothing is booked. The
patient's own pages (my appointments, offers, queue) live in ``portal_me_pages``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now, OptionalPrincipal
from onetrip.errors import NotAuthenticated, OnetripError
from onetrip.identity import patient_pages
from onetrip.identity import service as identity_service
from onetrip.identity.models import FamilyMember
from onetrip.identity.rules import RELATIONSHIP_LABELS
from onetrip.identity.service import Principal
from onetrip.numbers import parse_id
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking, service
from onetrip.scheduling.errors import SlotNotFound
from onetrip.scheduling.models import Schedule, Slot
from onetrip.scheduling.page_booking import (
    book_once,
    booking_gate,
    form_error,
    local_day,
    new_form_token,
    place_of,
    terms_of,
    time_groups,
)
from onetrip.scheduling.rules import (
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    SESSION_LABELS,
    Channel,
    Restriction,
)
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)

#: The booking form's fields that a refusal belongs to; everything else goes above the form.
BOOK_FIELDS = {"patient_restricted": "patient_id", "limit_reached": "patient_id",
               "permission_denied": "patient_id", "patient_not_found": "patient_id",
               "invalid_patient": "patient_id"}


def portal_channel(request: Request) -> Channel:
    """WeChat's built-in browser books through the WeChat channel, other browsers the web."""
    return Channel.wechat if "MicroMessenger" in request.headers.get("user-agent", "") \
        else Channel.web


def account_of(principal: Principal | None) -> Principal | None:
    """The signed-in phone account (patient or proxy), or None for anyone else."""
    return patient_pages.account_principal(principal)


def signed_in_account(principal: OptionalPrincipal) -> Principal:
    """Form posts: the account, or 401 (the error page links to SMS sign-in)."""
    me = account_of(principal)
    if me is None:
        raise NotAuthenticated()
    return me


#: The signed-in phone account of a form post.
Account = Annotated[Principal, Depends(signed_in_account)]
to_sign_in = patient_pages.to_sign_in


# --- hospital → department → date → doctor → time ----------------------------------------


@router.get("/book")
def choose_hospital(request: Request, db: DbSession) -> Response:
    order = {"tertiary": 0, "secondary": 1, "primary": 2}
    hospitals = sorted(org_service.list_hospitals(db), key=lambda h: (order[h.level], h.id))
    return render_page(request, "portal_hospitals.html", {"hospitals": hospitals})


@router.get("/book/hospitals/{code}")
def choose_department(code: str, request: Request, db: DbSession) -> Response:
    hospital = org_service.access_hospital(db, code)
    departments = org_service.list_departments(db, hospital)
    return render_page(request, "portal_departments.html", {
        "hospital": hospital, "roots": [d for d in departments if d.parent_id is None]})


def _remaining(available: dict[str, int], channel: Channel) -> int:
    return sum(n for pool, n in available.items() if pool in CHANNEL_POOLS[channel])


def _parse_day(raw: str | None, days: list[date]) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if day in days else None


@router.get("/book/hospitals/{code}/{dept_code}")
def choose_doctor(code: str, dept_code: str, request: Request, db: DbSession, now: Now,
                  day: str | None = None) -> Response:
    """A strip of dates with the slots left for this channel, and the day's doctors."""
    hospital = org_service.access_hospital(db, code)
    dept = org_service.access_department(db, hospital, dept_code)
    channel = portal_channel(request)
    policy, _rule = service.policy_for(db, hospital.id)
    today = local_day(now)
    days = [today + timedelta(days=i) for i in range(policy.online_release_days + 1)]
    by_day: dict[date, list[Schedule]] = {
        d: service.list_schedules(db, hospital=hospital, day=d, department=dept) for d in days}
    avail = service.availability(db, [s.id for ss in by_day.values() for s in ss], now)
    reopens = {d: service.reopens_at(policy, d, now) for d in days}

    def left(s: Schedule) -> int:
        bookable = s.status in BOOKABLE_SCHEDULE_STATUSES and reopens[s.day] is None
        return _remaining(avail[s.id], channel) if bookable else 0

    strip = [{"day": d, "left": sum(left(s) for s in by_day[d]), "reopens": reopens[d],
              "sessions": len(by_day[d])} for d in days]
    chosen = _parse_day(day, days) or next(
        (d for d, x in zip(days, strip, strict=True) if x["left"]), today)
    rows = []
    for s in by_day[chosen]:
        doc_id = s.substitute_practitioner_id or s.practitioner_id
        rows.append({"schedule": s, "doctor": db.get(Practitioner, doc_id) if doc_id else None,
                     "left": left(s), "over": s.end_at <= now})
    ctx = {"hospital": hospital, "dept": dept, "strip": strip, "day": chosen, "rows": rows,
           "reopens": reopens[chosen], "sessions": SESSION_LABELS,
           "bad_day": bool(day) and _parse_day(day, days) is None}
    name = "portal_doctors.html" if request.headers.get("hx-request") == "true" \
        else "portal_dates.html"
    return render_page(request, name, ctx)


def schedule_context(db: Session, schedule: Schedule) -> dict[str, Any]:
    """Hospital, department, doctor and place of a session, for the pages that show it."""
    doc_id = schedule.substitute_practitioner_id or schedule.practitioner_id
    return {"schedule": schedule, "hospital": db.get_one(Hospital, schedule.hospital_id),
            "dept": db.get_one(Department, schedule.department_id),
            "doctor": db.get(Practitioner, doc_id) if doc_id else None,
            "place": place_of(db, schedule), "sessions": SESSION_LABELS}


def times_page(request: Request, db: Session, now: datetime, principal: Principal | None,
               schedule_id: int, errors: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    """The free minutes of one session (BK-3); a full session offers the waitlist."""
    schedule = service.access_schedule(db, schedule_id)
    policy, _rule = service.policy_for(db, schedule.hospital_id)
    reopens = service.reopens_at(policy, schedule.day, now)
    bookable = schedule.status in BOOKABLE_SCHEDULE_STATUSES and reopens is None
    slots = service.free_slots(db, schedule=schedule, channel=portal_channel(request), now=now) \
        if bookable else []
    me = account_of(principal)
    members = identity_service.family_of(db, me.account_id) if me and me.account_id else []
    return render_page(request, "portal_times.html", {
        **schedule_context(db, schedule), "groups": time_groups(slots), "reopens": reopens,
        "can_wait": bookable and schedule.end_at > now and not slots,
        "members": members, "labels": RELATIONSHIP_LABELS, "signed_in": me is not None,
        "errors": errors or {}}, status_code=status_code)


@router.get("/book/schedules/{schedule_id}")
def choose_time(schedule_id: int, request: Request, db: DbSession, now: Now,
                principal: OptionalPrincipal) -> Response:
    return times_page(request, db, now, principal, schedule_id)


# --- the booking form --------------------------------------------------------------------


def restrictions_at(db: Session, members: list[FamilyMember], hospital_id: int,
                    now: datetime) -> dict[int, Restriction]:
    """BK-6: the no-show restriction in force for each family member at a hospital."""
    _policy, rule = service.policy_for(db, hospital_id)
    out = {}
    for m in members:
        found = booking.restriction_of(db, patient_id=m.patient_id, hospital_id=hospital_id,
                                       rule=rule, now=now)
        if found is not None:
            out[m.patient_id] = found
    return out


def _form_page(request: Request, db: Session, me: Principal, slot_id: int, now: datetime,
               values: dict[str, str], errors: dict[str, str], status_code: int = 200,
               ) -> Response:
    slot = db.get(Slot, slot_id)
    if slot is None:
        raise SlotNotFound(detail={"slot_id": slot_id})
    assert me.account_id is not None
    members = identity_service.family_of(db, me.account_id)
    restricted = restrictions_at(db, members, slot.schedule.hospital_id, now)
    if "patient_id" not in values:
        free = [m for m in members if m.patient_id not in restricted]
        values = {**values, "patient_id": str(free[0].patient_id) if free else ""}
    return render_page(request, "portal_book.html", {
        **schedule_context(db, slot.schedule), "slot": slot, "members": members,
        "restricted": restricted, "labels": RELATIONSHIP_LABELS, "values": values,
        "terms": terms_of(db, slot),
        "errors": errors, "form_token": new_form_token()}, status_code=status_code)


@router.get("/book/slots/{slot_id}")
def booking_form(slot_id: int, request: Request, db: DbSession, now: Now,
                 principal: OptionalPrincipal) -> Response:
    me = account_of(principal)
    if me is None:
        return to_sign_in(f"/book/slots/{slot_id}")
    return _form_page(request, db, me, slot_id, now, {}, {})


PortalGate = Annotated[None, Depends(booking_gate(portal_channel))]


@router.post("/book/slots/{slot_id}")
def book_slot(slot_id: int, _gate: PortalGate, request: Request, db: DbSession, now: Now,
              principal: OptionalPrincipal,
              patient_id: Annotated[str, Form(max_length=12)] = "",
              form_token: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Book the slot for the chosen family member; the form token makes a resubmit harmless."""
    me = account_of(principal)
    if me is None:
        return to_sign_in(f"/book/slots/{slot_id}")
    values = {"patient_id": patient_id}
    patient = parse_id(patient_id)
    if patient is None:
        return _form_page(request, db, me, slot_id, now, values,
                          {"patient_id": "请选择就诊人"}, status_code=422)
    try:
        appt = book_once(db, principal=me, form_token=form_token, patient_id=patient,
                         slot_id=slot_id, channel=portal_channel(request), now=now)
    except OnetripError as exc:
        if exc.http_status == 401:
            raise
        return _form_page(request, db, me, slot_id, now, values, form_error(exc, BOOK_FIELDS),
                          status_code=exc.http_status)
    return RedirectResponse(f"/me/appointments/{appt.id}?booked=1", status_code=303)
