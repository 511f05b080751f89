"""Booking use cases: hold, book, confirm, cancel. Race-safe by construction.

A booking is made by the set-based core in ``engine`` (a batch of one here; the group
committer hands it many): a conditional UPDATE claims the slot only while it is free and
its pool open to the channel, and the appointment enters under partial unique indexes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.config import get_settings
from onetrip.db import rowcount
from onetrip.errors import OnetripError, PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Hospital
from onetrip.scheduling import engine, penalties, service
from onetrip.scheduling.errors import (
    AppointmentNotFound,
    CancelDeadlinePassed,
    HoldExpired,
    NotCancellable,
)
from onetrip.scheduling.events import AppointmentBooked, AppointmentCancelled
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import (
    ACTIVE_STATUSES,
    Channel,
    PenaltyEvent,
    PenaltyRule,
    Restriction,
    cancel_deadline,
)

_ACTIVE = [s.value for s in ACTIVE_STATUSES]


def check_channel(db: Session, principal: Principal, channel: Channel,
                  schedule: Schedule) -> None:
    """May this principal book this schedule through this channel (BK-1, BK-8)?"""
    ids = {schedule.hospital_id, principal.hospital_id or schedule.hospital_id}
    engine.check_channel(principal, channel, schedule.hospital_id,
                         {i: db.get(Hospital, i) for i in ids})


def restriction_of(db: Session, *, patient_id: int, hospital_id: int, rule: PenaltyRule,
                   now: datetime) -> Restriction | None:
    """The no-show restriction in force for a patient at a hospital (or its region)."""
    history = penalties.penalty_histories(db, {patient_id}).get(patient_id, [])
    return penalties.restriction_in(db, {}, history, hospital_id=hospital_id, rule=rule, now=now)


def book(db: Session, *, principal: Principal, patient_id: int, channel: Channel,
         now: datetime, slot_id: int | None = None, schedule_id: int | None = None,
         hold: bool = False) -> Appointment:
    """Book (or hold) one slot for a real-name patient.

    Raises SlotTaken, ScheduleFull, PoolClosed, SlotInPast, ScheduleNotOpen, LimitReached,
    PatientRestricted, ChannelNotAllowed; nothing is written when it raises.
    """
    [outcome] = engine.book_many(db, [engine.BookingRequest(
        principal=principal, patient_id=patient_id, channel=channel, slot_id=slot_id,
        schedule_id=schedule_id, hold=hold)], now=now)
    if isinstance(outcome, OnetripError):
        raise outcome
    return db.get_one(Appointment, outcome.id)


def access_appointment(db: Session, principal: Principal, appointment_id: int) -> Appointment:
    """The appointment, if this principal may see it; raises AppointmentNotFound."""
    appt = db.get(Appointment, appointment_id)
    if appt is None:
        raise AppointmentNotFound(detail={"appointment_id": appointment_id})
    if principal.role in (Role.patient, Role.proxy):
        identity_service.access_patient(db, principal, appt.patient_id)
    elif principal.role is Role.regulator:
        raise PermissionDenied()
    elif principal.role is not Role.regional_admin and principal.hospital_id != appt.hospital_id:
        raise AppointmentNotFound(detail={"appointment_id": appointment_id})
    return appt


def not_by_number_at_a_kiosk(principal: Principal) -> None:
    """BK-8: a kiosk acts for the patient whose card it reads (its pages), never on an
    appointment named by its number."""
    if principal.role is Role.kiosk:
        raise PermissionDenied("自助机须先读取就诊人证件再办理", detail={"reason": "kiosk"})


def confirm(db: Session, *, principal: Principal, appointment_id: int,
            now: datetime) -> Appointment:
    """Turn a live hold into a booking; raises HoldExpired once its minutes are up."""
    not_by_number_at_a_kiosk(principal)
    appt = access_appointment(db, principal, appointment_id)
    if appt.status == "booked":
        return appt
    done = rowcount(db.execute(
        update(Appointment).where(Appointment.id == appt.id, Appointment.status == "held",
                                  Appointment.hold_expires_at > now)
        .values(status="booked", booked_at=now, hold_expires_at=None),
        execution_options={"synchronize_session": False}))
    if not done:
        raise HoldExpired(detail={"appointment_id": appt.id})
    db.execute(update(Slot).where(Slot.id == appt.slot_id, Slot.status == "held")
               .values(status="booked", held_until=None),
               execution_options={"synchronize_session": False})
    db.refresh(appt)
    events.publish(db, AppointmentBooked.of(appt))
    return appt


def release_slot(db: Session, slot_id: int, now: datetime) -> None:
    """A slot is free again: to the next waitlisted patient if any, else to its pool."""
    from onetrip.scheduling import waitlist

    db.execute(update(Slot).where(Slot.id == slot_id, Slot.status.in_(("booked", "held")))
               .values(status="free", held_until=None),
               execution_options={"synchronize_session": False})
    waitlist.offer_freed_slot(db, slot_id=slot_id, now=now)


def cancel(db: Session, *, principal: Principal, appointment_id: int, now: datetime,
           reason: str = "") -> Appointment:
    """Cancel a held or booked appointment and free its slot (BK-6).

    Patients cancel free of penalty until the deadline (16:00 of the working day before);
    later, only staff can cancel, and the cancellation counts as late (or a same-day refund).
    """
    not_by_number_at_a_kiosk(principal)
    appt = access_appointment(db, principal, appointment_id)
    if appt.status not in ("held", "booked"):
        raise NotCancellable(detail={"status": appt.status})
    end_at = db.get_one(Schedule, appt.schedule_id).end_at
    if now >= end_at:
        # BK-6: once the session has run the patient was seen or is a no-show; cancelling
        # then would turn a no-show into a refund and wipe it from the penalty history.
        raise NotCancellable("就诊时间已过，不能取消", detail={
            "reason": "session_over", "end_at": end_at.isoformat()})
    policy, _rule = service.policy_for(db, appt.hospital_id)
    tz = get_settings().tz
    deadline = cancel_deadline(org_calendar.working_day_before(db, appt.hospital_id, appt.day),
                               policy, tz)
    penalty: str | None = None
    if appt.status == "booked" and now > deadline:
        if principal.role in (Role.patient, Role.proxy):
            raise CancelDeadlinePassed(
                detail={"deadline": deadline.isoformat()})
        same_day = now.astimezone(tz).date() >= appt.day
        penalty = (PenaltyEvent.same_day_refund if same_day
                   else PenaltyEvent.late_cancellation).value
    done = rowcount(db.execute(
        update(Appointment).where(Appointment.id == appt.id,
                                  Appointment.status.in_(("held", "booked")))
        .values(status="cancelled", cancelled_at=now, cancel_reason=reason[:200],
                penalty_event=penalty),
        execution_options={"synchronize_session": False}))
    if not done:
        raise NotCancellable(detail={"status": "changed"})
    if appt.start_at > now:
        release_slot(db, appt.slot_id, now)
    db.refresh(appt)
    events.publish(db, AppointmentCancelled(appointment_id=appt.id, patient_id=appt.patient_id,
                                            reason=reason))
    return appt


def list_appointments(db: Session, *, patient_id: int, statuses: list[str] | None = None,
                      ) -> list[Appointment]:
    stmt = select(Appointment).where(Appointment.patient_id == patient_id)
    if statuses:
        stmt = stmt.where(Appointment.status.in_(statuses))
    return list(db.scalars(stmt.order_by(Appointment.start_at.desc(), Appointment.id.desc())))


def active_count(db: Session, *, schedule_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Appointment).where(
        and_(Appointment.schedule_id == schedule_id, Appointment.status.in_(_ACTIVE)))) or 0
