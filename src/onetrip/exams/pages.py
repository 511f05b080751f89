"""Exam pages: the booking centre console (orders waiting, proposed plan, adjust, book) and
the patient's itinerary as a timeline; the kiosk's exam pages ride along (kiosk_pages)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.deps import DbSession, Now, OptionalPrincipal
from onetrip.errors import NotAuthenticated, OnetripError, PermissionDenied
from onetrip.exams import booking, followup, kiosk_pages, service, validate
from onetrip.exams import rules as R
from onetrip.exams.errors import FastingInvalid
from onetrip.exams.models import ExamBooking, ExamResource
from onetrip.identity import patient_pages
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.numbers import parse_id
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)
router.include_router(kiosk_pages.router)
ALTERNATIVES = 12  # other slots offered per exam when the centre adjusts a plan
#: After a fasting exam that ends later than this, the patient's meal is not breakfast.
BREAKFAST_UNTIL = time(10, 0)


def _centre(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise NotAuthenticated("请先以检查预约中心身份登录")
    if principal.role not in (Role.exam_centre, Role.hospital_admin) or not principal.hospital_id:
        raise PermissionDenied("仅检查预约中心可以使用此页面")
    return principal


Centre = Annotated[Principal, Depends(_centre)]


@router.get("/exams/centre")
def console(request: Request, db: DbSession, principal: Centre) -> Response:
    """Orders waiting, one row per patient."""
    assert principal.hospital_id is not None
    cat = service.catalogue(db, principal.hospital_id)
    waiting: dict[int, list[Any]] = defaultdict(list)
    for o in service.pending_orders(db, hospital_id=principal.hospital_id):
        waiting[o.patient_id].append(o)
    rows = []
    for pid, orders in waiting.items():
        patient = identity_service.get_patient(db, pid)
        rows.append({"patient_id": pid, "name": patient.name if patient else "",
                     "exams": [cat.exams[o.exam_code].name if o.exam_code in cat.exams
                               else o.exam_code for o in orders],
                     "complex": any(o.exam_code in cat.exams
                                    and R.complex_exam(cat.exams[o.exam_code]) for o in orders)})
    return render_page(request, "exams_centre.html", {"rows": rows})


def _plan_context(db: DbSession, hospital_id: int, patient_id: int, it: R.Itinerary,
                  now: datetime) -> dict[str, Any]:
    tz = get_settings().tz
    cat = service.catalogue(db, hospital_id)
    orders = {o.id: o for o in service.pending_orders(db, hospital_id=hospital_id,
                                                      patient_id=patient_id)}
    free = service.free_slots(db, hospital_id=hospital_id, start=now,
                              end=service.plan_end(cat, [v.exam_code for v in it.visits], now))
    rooms = {r.id: r for r in db.scalars(select(ExamResource).where(
        ExamResource.hospital_id == hospital_id))}
    req = service.request_for(db, list(orders.values()), now) if orders else None
    checked = booking.as_booked(req, it) if req else None
    site = service.site(db, hospital_id)
    by_id = {s.slot_id: s for s in free}

    def bookable(v: R.Visit, s: R.FreeSlot) -> bool:
        """The plan with ``v`` moved to ``s`` passes the check the booking makes (the
        patient's booked exams, the rest of the plan, the follow-up)."""
        assert checked is not None
        moved = R.visit_for(s, R.OrderItem(v.order_id, v.exam_code), cat.exams[v.exam_code])
        plan = replace(it, visits=[moved if w is v else w for w in it.visits])
        used = [by_id[w.slot_id] for w in plan.visits if w.slot_id in by_id]
        return not validate.validate(cat, site, tz, [checked], [plan], used)

    visits = []
    for v in it.visits:
        exam = cat.exams[v.exam_code]
        day = v.start.astimezone(tz).date()
        options = list(islice((s for s in free if v.exam_code in s.exam_codes
                               and s.start.astimezone(tz).date() == day
                               and s.slot_id != v.slot_id and bookable(v, s)), ALTERNATIVES))
        visits.append({"v": v, "exam": exam, "place": _place(rooms.get(v.resource_id)),
                       "options": [(s, rooms[s.resource_id].name) for s in options]})
    booked = [{"b": b, "exam": cat.exams.get(b.exam_code), "place": _place(b.resource)}
              for b in booking.bookings_of(db, patient_id=patient_id)
              if b.hospital_id == hospital_id and b.start_at > now]
    patient = identity_service.get_patient(db, patient_id)
    session = followup.session_order(list(orders.values()))
    return {"patient": patient, "it": it, "visits": visits, "booked": booked,
            "fasting_since": req.facts.fasting_since if req else None,
            "trips": it.trips(tz),
            "minutes": it.hospital_minutes(tz),
            "followup_session": followup.session_label(db, session) if session else None,
            "unplanned": [cat.exams[orders[i].exam_code].name for i in it.unplanned
                          if i in orders]}


def _place(room: ExamResource | None) -> str:
    return f"{room.building}{room.room} {room.name}" if room is not None else ""


@router.get("/exams/centre/patients/{patient_id}")
def proposal(patient_id: int, request: Request, db: DbSession, principal: Centre,
             now: Now) -> Response:
    """The planner's proposal for one patient, with other slots to adjust it."""
    assert principal.hospital_id is not None
    identity_service.access_patient(db, principal, patient_id, action="exam.plan")
    it = service.propose(db, hospital_id=principal.hospital_id, patient_id=patient_id,
                         now=now, principal=principal)
    return render_page(request, "exams_plan.html",
                       _plan_context(db, principal.hospital_id, patient_id, it, now))


def _plan_again(request: Request, db: DbSession, principal: Principal, patient_id: int,
                now: datetime, exc: OnetripError, status_code: int) -> Response:
    """The plan page proposed afresh, with why the last action changed nothing."""
    assert principal.hospital_id is not None
    it = service.propose(db, hospital_id=principal.hospital_id, patient_id=patient_id,
                         now=now, principal=principal)
    ctx = _plan_context(db, principal.hospital_id, patient_id, it, now)
    return render_page(request, "exams_plan.html",
                       {**ctx, "flash": exc.text, "flash_kind": "error"},
                       status_code=status_code)


@router.post("/exams/centre/patients/{patient_id}/fasting")
async def fasting(patient_id: int, request: Request, db: DbSession, principal: Centre,
                  now: Now) -> Response:
    """患者已空腹: record when the patient last ate, then plan again from it."""
    assert principal.hospital_id is not None
    form = await request.form()
    try:
        since: datetime | None = datetime.fromisoformat(str(form.get("since") or ""))
    except ValueError:
        since = None
    try:
        if since is None:
            raise FastingInvalid(detail={"field": "since"})
        if since.tzinfo is None:  # the browser's datetime-local: the hospital's wall clock
            since = since.replace(tzinfo=get_settings().tz)
        service.record_fasting(db, principal=principal, hospital_id=principal.hospital_id,
                               patient_id=patient_id, since=since, now=now)
    except OnetripError as exc:  # nothing was recorded
        return _plan_again(request, db, principal, patient_id, now, exc, exc.http_status)
    return RedirectResponse(f"/exams/centre/patients/{patient_id}", status_code=303)


@router.post("/exams/centre/patients/{patient_id}/book")
async def book(patient_id: int, request: Request, db: DbSession, principal: Centre,
               now: Now) -> Response:
    """Book the plan as shown (or as adjusted); a broken rule shows the plan again."""
    assert principal.hospital_id is not None
    form = await request.form()
    # A pick names an exam and a slot by id; anything else in the form is no pick.
    numbered = [(parse_id(k.removeprefix("slot_")), parse_id(str(v))) for k, v in form.items()
                if k.startswith("slot_")]
    picks = [(exam, slot) for exam, slot in numbered if exam is not None and slot is not None]
    followup = str(form.get("followup_at") or "")
    try:
        followup_at = datetime.fromisoformat(followup) if followup else None
    except ValueError:
        followup_at = None  # a mangled field: book the exams, plan the follow-up again
    if followup_at is not None and followup_at.tzinfo is None:
        followup_at = None
    try:
        hospital_id, it = service.itinerary_from(db, patient_id=patient_id, picks=picks,
                                                 followup_at=followup_at)
        booking.book_plan(db, principal=principal, hospital_id=hospital_id,
                          patient_id=patient_id, itinerary=it, now=now)
    except OnetripError as exc:  # nothing was booked: the claims roll back together
        return _plan_again(request, db, principal, patient_id, now, exc, 409)
    return RedirectResponse(f"/exams/patients/{patient_id}/itinerary?booked=1",
                            status_code=303)


@router.get("/me/exams")
def my_exams(request: Request, db: DbSession, principal: OptionalPrincipal,
             now: Now) -> Response:
    """The phone account's family members with exams booked, each to their timeline."""
    me = patient_pages.account_principal(principal)
    if me is None or me.account_id is None:
        return patient_pages.to_sign_in("/me/exams")
    rows = []
    for m in identity_service.family_of(db, me.account_id):
        identity_service.access_patient(db, me, m.patient_id, action="exam.read")
        ahead = [b for b in booking.bookings_of(db, patient_id=m.patient_id)
                 if b.start_at > now - timedelta(hours=12)]
        rows.append({"member": m, "count": len(ahead),
                     "next": ahead[0].start_at if ahead else None})
    return render_page(request, "exams_mine.html", {"rows": rows})


@router.get("/exams/patients/{patient_id}/itinerary")
def itinerary_page(patient_id: int, request: Request, db: DbSession,
                   principal: OptionalPrincipal, booked: int = 0) -> Response:
    """The patient's booked exams as a timeline, day by day, with preparation."""
    if principal is None:
        raise NotAuthenticated()
    identity_service.access_patient(db, principal, patient_id)
    tz = get_settings().tz
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    cats: dict[int, R.Catalogue] = {}
    followups: dict[date, tuple[datetime, str]] = {}
    for b in booking.bookings_of(db, patient_id=patient_id):
        cat = cats.setdefault(b.hospital_id, service.catalogue(db, b.hospital_id))
        days[b.start_at.astimezone(tz).date()].append(_item(b, cat.exams.get(b.exam_code)))
        if b.followup_at is not None:
            followups[b.followup_at.astimezone(tz).date()] = (
                b.followup_at, service.followup_title(db, b))
    timeline = []
    for day in sorted(days):
        items = days[day]
        fasting = [i for i in items if i["fasting"]]
        if fasting:  # the patient eats after the last fasting exam of the day
            end = max(i["end"] for i in fasting)
            title = "可以进食早餐" if end.astimezone(tz).time() < BREAKFAST_UNTIL else "可以进食"
            items.append({"kind": "meal", "start": end, "title": title})
        if day in followups:
            at, title = followups[day]
            items.append({"kind": "followup", "start": at, "title": title})
        timeline.append({"day": day, "entries": sorted(items, key=lambda i: i["start"])})
    patient = identity_service.get_patient(db, patient_id)
    return render_page(request, "exams_itinerary.html", {
        "patient": patient, "timeline": timeline,
        "centre": principal.role in (Role.exam_centre, Role.hospital_admin),
        "patient_view": principal.role in (Role.patient, Role.proxy),
        "flash": "预约成功，检查准备提醒已发送" if booked else None})


def _item(b: ExamBooking, exam: R.ExamType | None) -> dict[str, Any]:
    after = timedelta(minutes=exam.after_minutes if exam else 0)  # observation, recovery
    return {"kind": "exam", "start": b.start_at, "end": b.end_at + after,
            "title": exam.name if exam else b.exam_code,
            "place": f"{b.resource.building}{b.resource.room} {b.resource.name}",
            "instruction": exam.instruction if exam else "",
            "fasting": bool(exam and exam.fasting), "status": b.status}
