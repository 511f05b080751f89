"""Exam booking at the kiosk (EX-1): a single, simple exam, for the patient whose card was
presented (the kiosk's identification, ``scheduling/kiosk_pages.py``).

The patient sees the exam orders waiting at this hospital, takes the planner's proposal for
one of them or another free slot, and gets its preparation on screen and on a printed slip.
Several exams, or one with sedation, contrast or bowel preparation, are for the booking
centre: the kiosk says so and books nothing. A second tap on "确认" lands on the booking the
first one made: an order has one active booking (the database keeps it so).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.deps import DbSession, Now
from onetrip.errors import OnetripError
from onetrip.exams import booking, resources, service
from onetrip.exams import rules as R
from onetrip.exams.errors import ExamBookingNotFound, OrderNotFound, OrderNotPending
from onetrip.exams.models import ExamBooking, ExamOrder
from onetrip.identity import service as identity_service
from onetrip.scheduling.kiosk_pages import AtKiosk, Kiosk, at_kiosk, patient_page, qr_svg

router = APIRouter(include_in_schema=False)
CHOICES = 12  # other times offered beside the proposal
PER_DAY = 4  # of them on one day


@router.get("/kiosk/exams")
def exams(request: Request, db: DbSession, kiosk: Kiosk, now: Now) -> Response:
    """The patient's exam orders waiting at this hospital, and the exams booked ahead."""
    here = at_kiosk(request, db, kiosk, now)
    identity_service.access_patient(db, here.principal, here.patient.id, action="exam.read")
    cat = service.catalogue(db, here.hospital.id)
    waiting = []
    for o in service.pending_orders(db, hospital_id=here.hospital.id,
                                    patient_id=here.patient.id):
        exam = cat.exams.get(o.exam_code)
        waiting.append({"order": o, "exam": exam,
                        "here": exam is not None and _kiosk_may_book(exam)})
    booked = [{"b": b, "exam": cat.exams.get(b.exam_code)}
              for b in booking.bookings_of(db, patient_id=here.patient.id)
              if b.hospital_id == here.hospital.id and b.start_at > now - timedelta(hours=2)]
    return patient_page(request, here, now, "kiosk_exams.html",
                        {"waiting": waiting, "booked": booked})


def _kiosk_may_book(exam: R.ExamType) -> bool:
    return R.channel_allows(R.ExamChannel.kiosk, [exam])


def _own_order(db: Session, here: AtKiosk, order_id: int) -> ExamOrder:
    order = service.access_order(db, order_id, here.hospital.id)
    if order.patient_id != here.patient.id:
        raise OrderNotFound(detail={"order_id": order_id})
    return order


def _slots_page(request: Request, db: Session, here: AtKiosk, now: datetime,
                order: ExamOrder, error: str | None = None,
                status_code: int = 200) -> Response:
    """The proposal for one order and other free slots, or why the kiosk cannot book it."""
    tz = get_settings().tz
    cat = service.catalogue(db, here.hospital.id)
    exam = cat.exams.get(order.exam_code)
    ctx: dict[str, Any] = {"order": order, "exam": exam, "error": error,
                           "here": exam is not None and _kiosk_may_book(exam)}
    if ctx["here"] and order.status == "pending":
        assert exam is not None
        # Its place in the plan of all the patient's waiting orders, so that the others
        # still fit into the same trip when the centre books them.
        it = service.propose(db, hospital_id=here.hospital.id, patient_id=here.patient.id,
                             now=now, principal=here.principal)
        suggested = next((v for v in it.visits if v.order_id == order.id), None)
        req = service.request_for(db, [order], now)
        site = service.site(db, here.hospital.id)
        item = R.OrderItem(order.id, order.exam_code)
        free = service.free_slots(db, hospital_id=here.hospital.id, start=now,
                                  end=service.plan_end(cat, [order.exam_code], now))
        # Other times that keep the rules, with the patient's booked exams too.
        ctx |= {"suggested": suggested, "followup_at": it.followup_at,
                "room": _room(db, here, suggested.resource_id) if suggested else "",
                "choices": _choices([s for s in free if R.usable(
                    cat, site, tz, req, item, s) and (suggested is None
                                                     or s.start != suggested.start)], tz)}
    return patient_page(request, here, now, "kiosk_exam_slots.html", ctx,
                        status_code=status_code)


def _room(db: Session, here: AtKiosk, resource_id: int) -> str:
    r = resources.access_resource(db, resource_id, here.hospital.id)
    return f"{r.building}{r.room} {r.name}"


def _choices(free: list[R.FreeSlot], tz: ZoneInfo) -> list[R.FreeSlot]:
    """Other times to offer: one slot per start time, a few a day over the coming days."""
    out: list[R.FreeSlot] = []
    per_day: dict[date, int] = {}
    seen: set[datetime] = set()
    for s in free:  # earliest first
        day = s.start.astimezone(tz).date()
        if s.start in seen or per_day.get(day, 0) >= PER_DAY:
            continue
        seen.add(s.start)
        per_day[day] = per_day.get(day, 0) + 1
        out.append(s)
    return out[:CHOICES]


@router.get("/kiosk/exams/orders/{order_id}")
def slots(order_id: int, request: Request, db: DbSession, kiosk: Kiosk, now: Now) -> Response:
    here = at_kiosk(request, db, kiosk, now)
    return _slots_page(request, db, here, now, _own_order(db, here, order_id))


@router.get("/kiosk/exams/orders/{order_id}/slots/{slot_id}")
def confirm(order_id: int, slot_id: int, request: Request, db: DbSession, kiosk: Kiosk,
            now: Now) -> Response:
    """One chosen time, with the place and the preparation, to confirm."""
    here = at_kiosk(request, db, kiosk, now)
    order = _own_order(db, here, order_id)
    cat = service.catalogue(db, here.hospital.id)
    slot = next((s for s in service.free_slots(db, hospital_id=here.hospital.id, start=now,
                                               end=service.plan_end(cat, [order.exam_code], now))
                 if s.slot_id == slot_id and order.exam_code in s.exam_codes), None)
    if slot is None:
        return _slots_page(request, db, here, now, order, "该时间已约满或不可预约，请另选时间",
                           409)
    exam = cat.exams.get(order.exam_code)
    return patient_page(request, here, now, "kiosk_exam_confirm.html", {
        "order": order, "exam": exam, "slot": slot, "room": _room(db, here, slot.resource_id)})


@router.post("/kiosk/exams/orders/{order_id}")
def book(order_id: int, request: Request, db: DbSession, kiosk: Kiosk, now: Now,
         slot_id: Annotated[int, Form(gt=0)], suggested: Annotated[int, Form()] = 0,
         followup_at: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Book the chosen slot (with the proposal's follow-up when it is the proposal's)."""
    here = at_kiosk(request, db, kiosk, now)
    order = _own_order(db, here, order_id)
    followup = None
    if slot_id == suggested and followup_at:
        try:
            followup = datetime.fromisoformat(followup_at)
        except ValueError:
            followup = None  # a mangled field: the exam alone
    try:
        hospital_id, it = service.itinerary_from(db, patient_id=here.patient.id,
                                                 picks=[(order.id, slot_id)],
                                                 followup_at=followup)
        rows = booking.book_plan(db, principal=here.principal, hospital_id=hospital_id,
                                 patient_id=here.patient.id, itinerary=it, now=now)
    except OrderNotPending:
        # Booked already (a second tap): show that booking, book nothing more.
        done = db.scalar(select(ExamBooking).where(
            ExamBooking.order_id == order.id, ExamBooking.status.in_(("booked", "arrived"))))
        if done is None:
            raise
        return RedirectResponse(f"/kiosk/exams/bookings/{done.id}", status_code=303)
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        return _slots_page(request, db, here, now, order, exc.text, exc.http_status)
    return RedirectResponse(f"/kiosk/exams/bookings/{rows[0].id}", status_code=303)


@router.get("/kiosk/exams/bookings/{booking_id}")
def slip(booking_id: int, request: Request, db: DbSession, kiosk: Kiosk,
         now: Now) -> Response:
    """The booked exam and its preparation, to read and to print (RM-1)."""
    here = at_kiosk(request, db, kiosk, now)
    b = booking.access_booking(db, here.principal, booking_id)
    if b.patient_id != here.patient.id:
        raise ExamBookingNotFound(detail={"booking_id": booking_id})
    exam = service.catalogue(db, b.hospital_id).exams.get(b.exam_code)
    return patient_page(request, here, now, "kiosk_exam_slip.html", {
        "b": b, "exam": exam, "printed_at": now,
        "followup": service.followup_title(db, b) if b.followup_at else None,
        "qr": qr_svg(f"onetrip:exam-booking:{b.id}")})
