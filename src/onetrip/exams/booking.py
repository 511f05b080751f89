"""A plan becomes bookings: each slot claimed by one conditional UPDATE (never overbooked),
all of a plan or none of it; preparation reminders through the notify outbox; check-in,
cancellation and no-shows, which count under the booking engine's penalty rule (EX-4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import rowcount
from onetrip.errors import OnetripError
from onetrip.exams import followup, service, validate
from onetrip.exams import rules as R
from onetrip.exams.errors import (
    ChannelNotAllowed,
    ExamBookingNotFound,
    ExamSlotFull,
    NotCancellable,
    OrderNotPending,
    PlanBreaksRules,
)
from onetrip.exams.models import ExamBooking, ExamOrder, ExamSlot
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.notify import service as notify_service
from onetrip.scheduling import booking as scheduling_booking
from onetrip.scheduling import penalties
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.errors import PatientRestricted
from onetrip.scheduling.rules import PenaltyEvent, Restriction

_SLOT = cast(Table, ExamSlot.__table__)
_BOOKING = cast(Table, ExamBooking.__table__)
#: How exam no-shows are named among the booking engine's penalty events.
PENALTY_SOURCE = "exam"
#: Preparation reminders go out at this local time the evening before the exam.
REMINDER_EVENING = time(18, 0)
NOSHOW_AFTER = timedelta(minutes=30)


def restriction(db: Session, *, patient_id: int, hospital_id: int,
                now: datetime) -> Restriction | None:
    """EX-4: the restriction in force from the hospital's penalty rule, the booking
    engine's, which weighs exam no-shows (recorded by :func:`mark_noshows`) together with
    the outpatient ones."""
    _policy, rule = scheduling_service.policy_for(db, hospital_id)
    return scheduling_booking.restriction_of(db, patient_id=patient_id,
                                             hospital_id=hospital_id, rule=rule, now=now)


def _claim(db: Session, slot_id: int, now: datetime) -> bool:
    """One place in the slot, only while it has room, is open and lies ahead."""
    t = _SLOT.c
    return rowcount(db.execute(
        update(_SLOT).where(t.id == slot_id, t.booked < t.capacity, t.status == "open",
                            t.start_at > now).values(booked=t.booked + 1))) == 1


def _check_channel(db: Session, principal: Principal, cat: R.Catalogue,
                   orders: Sequence[ExamOrder], now: datetime) -> R.ExamChannel:
    channel = R.ROLE_CHANNEL.get(principal.role.value)
    if channel is None:
        raise ChannelNotAllowed("该角色不能预约检查")
    if not R.channel_allows(channel, [cat.exams[o.exam_code] for o in orders]):
        raise ChannelNotAllowed()
    if principal.role not in (Role.patient, Role.proxy) and any(
            o.hospital_id != principal.hospital_id for o in orders):
        raise ChannelNotAllowed("只能预约本院的检查")
    if channel in R.RESTRICTED_CHANNELS:
        found = restriction(db, patient_id=orders[0].patient_id,
                            hospital_id=orders[0].hospital_id, now=now)
        if found is not None:
            raise PatientRestricted(found.reason, detail={"until": found.until.isoformat()})
    return channel


def as_booked(req: R.PatientRequest, itinerary: R.Itinerary) -> R.PatientRequest:
    """The request a plan is checked against when booked: the follow-up's window where the
    plan has a follow-up time (its appointment is booked separately), none otherwise."""
    return replace(req, followup=replace(req.followup, starts=None)
                   if itinerary.followup_at and req.followup else None)


def book_plan(db: Session, *, principal: Principal, hospital_id: int, patient_id: int,
              itinerary: R.Itinerary, now: datetime) -> list[ExamBooking]:
    """Book every visit of an itinerary, or nothing: the plan is checked again by the
    validator against the slots free now, then each slot is claimed atomically."""
    identity_service.access_patient(db, principal, patient_id, action="exam.book")
    orders = [service.access_order(db, v.order_id, hospital_id) for v in itinerary.visits]
    if not orders or any(o.patient_id != patient_id for o in orders):
        raise PlanBreaksRules("行程中的检查申请不属于该患者")
    if any(o.status != "pending" for o in orders):
        raise OrderNotPending(detail={"order_ids": [o.id for o in orders
                                                    if o.status != "pending"]})
    cat = service.catalogue(db, hospital_id)
    channel = _check_channel(db, principal, cat, orders, now)
    tz = get_settings().tz
    site = service.site(db, hospital_id)
    # The patient's booked exams are in the request: the new ones keep the rules with them.
    req = as_booked(service.request_for(db, orders, now), itinerary)
    lo = min(v.start for v in itinerary.visits)
    hi = max(v.start for v in itinerary.visits) + timedelta(minutes=1)
    free = service.free_slots(db, hospital_id=hospital_id, start=lo, end=hi)
    broken = validate.validate(cat, site, tz, [req], [itinerary], free)
    if broken:
        if all(b.rule == "slot" for b in broken):
            raise ExamSlotFull(detail={"rules": [b.message for b in broken]})
        raise PlanBreaksRules("；".join(b.message for b in broken[:3]),
                              detail={"rules": sorted({b.rule for b in broken})})

    def keeps_rules(at: datetime) -> bool:
        moved = replace(itinerary, followup_at=at)
        return not validate.validate(cat, site, tz, [req], [moved], free)

    rows = []
    with db.begin_nested():
        for v in itinerary.visits:
            if not _claim(db, v.slot_id, now):
                raise ExamSlotFull(detail={"slot_id": v.slot_id})
        followup_at, appointment_id = itinerary.followup_at, None
        session = followup.session_order(orders)
        kept = None if followup_at is None or session is None else followup.booked(
            db, patient_id=patient_id, opens=followup_at, closes=followup_at)
        if kept is not None:  # the appointment an exam booked earlier has
            followup_at, appointment_id = kept
        elif followup_at is not None and session is not None:
            appt, followup_at = followup.book(db, principal=principal, order=session,
                                              patient_id=patient_id, itinerary=itinerary,
                                              now=now, keeps_rules=keeps_rules)
            appointment_id = appt.id
        for v in itinerary.visits:
            rows.append(ExamBooking(
                order_id=v.order_id, patient_id=patient_id, hospital_id=hospital_id,
                slot_id=v.slot_id, resource_id=v.resource_id, exam_code=v.exam_code,
                start_at=v.start, end_at=v.end, channel=channel.value,
                booked_by=principal.actor[:100], followup_at=followup_at,
                followup_appointment_id=appointment_id, created_at=now))
        db.add_all(rows)
        db.execute(update(ExamOrder).where(ExamOrder.id.in_([o.id for o in orders]))
                   .values(status="booked"), execution_options={"synchronize_session": False})
        db.flush()
    for o in orders:
        db.refresh(o)
    _queue_reminders(db, cat, rows, now)
    return rows


def book_batch(db: Session, *, principal: Principal, hospital_id: int,
               plans: Sequence[tuple[R.PatientRequest, R.Itinerary]], now: datetime
               ) -> tuple[list[int], dict[int, str]]:
    """EX-2 batch mode, booked: each patient's plan of the joint re-plan
    (``service.propose_batch``) becomes bookings, that patient's all or none. Returns the
    patients booked, and those whose orders stay waiting with the reason (no slot within
    the planning days, a slot taken since, a follow-up gone)."""
    booked: list[int] = []
    failed: dict[int, str] = {}
    for req, it in plans:
        if not it.visits:
            failed[req.patient_id] = "近期无法按规则安排"
            continue
        try:
            with db.begin_nested():
                book_plan(db, principal=principal, hospital_id=hospital_id,
                          patient_id=req.patient_id, itinerary=it, now=now)
        except OnetripError as exc:
            failed[req.patient_id] = exc.text
            continue
        booked.append(req.patient_id)
    return booked, failed


def book_single(db: Session, *, principal: Principal, order_id: int, slot_id: int,
                now: datetime) -> ExamBooking:
    """EX-1: one exam in one slot (in clinic, at a kiosk or the centre), checked against the
    patient's other booked exams."""
    order = service.access_order(db, order_id, None)
    hospital_id, it = service.itinerary_from(db, patient_id=order.patient_id,
                                             picks=[(order_id, slot_id)])
    return book_plan(db, principal=principal, hospital_id=hospital_id,
                     patient_id=order.patient_id, itinerary=it, now=now)[0]


def _reminder_key(booking_id: int) -> str:
    return f"exam-prep-{booking_id}"


def _queue_reminders(db: Session, cat: R.Catalogue, rows: Sequence[ExamBooking],
                     now: datetime) -> None:
    """RM-1: the preparation of each exam, the evening before (or at once if that passed)."""
    tz = get_settings().tz
    drafts = []
    for b in rows:
        exam = cat.exams[b.exam_code]
        local = b.start_at.astimezone(tz)
        evening = datetime.combine(local.date() - timedelta(days=1), REMINDER_EVENING,
                                   tzinfo=tz)
        resource = b.resource if b.resource is not None else None
        place = f"{resource.building}{resource.room}" if resource else ""
        drafts.append(notify_service.Draft(
            patient_id=b.patient_id, template="exam_preparation",
            variables={"exam": exam.name, "time": f"{local:%m月%d日 %H:%M}", "place": place,
                       "instruction": exam.instruction or "无特殊准备"},
            send_at=max(evening, now), dedupe_key=_reminder_key(b.id),
            event_day=local.date()))
    notify_service.queue(db, drafts)


def access_booking(db: Session, principal: Principal, booking_id: int) -> ExamBooking:
    row = db.get(ExamBooking, booking_id)
    if row is None:
        raise ExamBookingNotFound(detail={"booking_id": booking_id})
    if principal.role in (Role.patient, Role.proxy):
        identity_service.access_patient(db, principal, row.patient_id)
    elif principal.hospital_id != row.hospital_id:
        raise ExamBookingNotFound(detail={"booking_id": booking_id})
    return row


def _free_place(db: Session, slot_id: int) -> None:
    t = _SLOT.c
    db.execute(update(_SLOT).where(t.id == slot_id, t.booked > 0).values(booked=t.booked - 1))


def cancel(db: Session, *, principal: Principal, booking_id: int, now: datetime) -> ExamBooking:
    """Cancel a booked exam before it starts; its place is free again, the order pending."""
    row = access_booking(db, principal, booking_id)
    done = rowcount(db.execute(
        update(ExamBooking).where(ExamBooking.id == row.id, ExamBooking.status == "booked",
                                  ExamBooking.start_at > now)
        .values(status="cancelled", cancelled_at=now),
        execution_options={"synchronize_session": False}))
    if not done:
        raise NotCancellable(detail={"status": row.status})
    _free_place(db, row.slot_id)
    db.execute(update(ExamOrder).where(ExamOrder.id == row.order_id).values(status="pending"),
               execution_options={"synchronize_session": False})
    notify_service.cancel_queued_by_key(db, dedupe_keys=[_reminder_key(row.id)])
    db.refresh(row)
    return row


def check_in(db: Session, *, principal: Principal, booking_id: int, now: datetime
             ) -> ExamBooking:
    """The patient has arrived at the exam room."""
    row = access_booking(db, principal, booking_id)
    if row.status == "booked":
        row.status = "arrived"
        db.flush()
    return row


def mark_noshows(db: Session, *, hospital_id: int, now: datetime) -> int:
    """EX-4: bookings not checked in 30 minutes after their start become no-shows, each
    recorded once with the booking engine's penalty events, where it restricts exam and
    outpatient booking alike (BK-6)."""
    t = _BOOKING.c
    marked = db.execute(
        update(_BOOKING).where(t.hospital_id == hospital_id, t.status == "booked",
                               t.start_at < now - NOSHOW_AFTER)
        # BK-6: the no-show is the exam's: it counts at its time (the calendar year of the
        # Beijing rule), however late the sweeper marks it
        .values(status="noshow", noshow_at=t.start_at, penalty_event=PenaltyEvent.noshow.value)
        .returning(t.id, t.patient_id, t.start_at)).all()
    for booking_id, patient_id, start_at in marked:
        penalties.record(db, patient_id=patient_id, hospital_id=hospital_id,
                         kind=PenaltyEvent.noshow, at=start_at, source=PENALTY_SOURCE,
                         source_id=booking_id)
    return len(marked)


def bookings_of(db: Session, *, patient_id: int, active_only: bool = True) -> list[ExamBooking]:
    stmt = select(ExamBooking).where(ExamBooking.patient_id == patient_id)
    if active_only:
        stmt = stmt.where(ExamBooking.status.in_(("booked", "arrived")))
    return list(db.scalars(stmt.order_by(ExamBooking.start_at)))
