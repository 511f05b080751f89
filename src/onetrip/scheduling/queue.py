"""Check-in, the waiting queue, calling patients in, and no-shows (BK-6, BK-11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.db import rowcount
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import scope, service
from onetrip.scheduling.booking import access_appointment
from onetrip.scheduling.errors import CheckInRefused, NoShowRefused
from onetrip.scheduling.events import AppointmentCheckedIn, NoShowRecorded, PatientCalled
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import Arrival, PenaltyEvent, estimated_wait, queue_order

#: How long after a session ends a booked patient who never checked in becomes a no-show.
NOSHOW_GRACE = timedelta(minutes=30)


def check_in(db: Session, *, principal: Principal, appointment_id: int, now: datetime,
             patient_id: int | None = None) -> Appointment:
    """Arrival check-in from kiosk, window or phone, within the allowed window (BK-8).

    On-site check-in names the patient (found by the document presented); the appointment
    must be that patient's: a booking cannot be transferred to another person.
    """
    appt = access_appointment(db, principal, appointment_id)
    if principal.role in (Role.kiosk, Role.window) and patient_id != appt.patient_id:
        raise CheckInRefused("证件与预约人不符，预约不可转让", detail={"reason": "not_owner"})
    if appt.status == "arrived":
        return appt
    if appt.status != "booked":
        raise CheckInRefused(detail={"status": appt.status})
    schedule = db.get_one(Schedule, appt.schedule_id)
    policy, _ = service.policy_for(db, appt.hospital_id)
    opens = appt.start_at - timedelta(minutes=policy.check_in_opens_minutes)
    if now < opens:
        raise CheckInRefused(f"请于就诊前{policy.check_in_opens_minutes}分钟内报到",
                             detail={"opens_at": opens.isoformat()})
    if now >= schedule.end_at or schedule.status == "stopped":
        raise CheckInRefused("本次出诊已结束", detail={"reason": "session_over"})
    db.execute(update(Appointment).where(Appointment.id == appt.id,
                                         Appointment.status == "booked")
               .values(status="arrived", checked_in_at=now),
               execution_options={"synchronize_session": False})
    db.refresh(appt)
    events.publish(db, AppointmentCheckedIn(appointment_id=appt.id, patient_id=appt.patient_id))
    return appt


@dataclass(frozen=True)
class QueueEntry:
    appointment: Appointment
    position: int  # patients ahead
    wait: timedelta
    late: bool


def queue_for(db: Session, *, schedule_id: int,
              now: datetime | None = None) -> list[QueueEntry]:
    """Checked-in patients not yet called, in call order, with their estimated wait (from
    ``now``: before the session begins the wait runs until it does)."""
    schedule = service.access_schedule(db, schedule_id)
    policy, _ = service.policy_for(db, schedule.hospital_id)
    waiting = {a.id: a for a in db.scalars(select(Appointment).where(
        Appointment.schedule_id == schedule_id, Appointment.status == "arrived",
        Appointment.called_at.is_(None)))}
    late_after = timedelta(minutes=policy.late_after_minutes)
    ordered = queue_order([Arrival(a.id, a.start_at, a.checked_in_at or a.start_at)
                           for a in waiting.values()], late_after)
    return [QueueEntry(waiting[x.appointment_id], i,
                       estimated_wait(i, schedule.slot_minutes, now=now,
                                      starts_at=schedule.start_at),
                       x.checked_in_at > x.slot_start + late_after)
            for i, x in enumerate(ordered)]


def position_of(db: Session, *, appointment: Appointment,
                now: datetime | None = None) -> QueueEntry | None:
    return next((e for e in queue_for(db, schedule_id=appointment.schedule_id, now=now)
                 if e.appointment.id == appointment.id), None)


def call_next(db: Session, *, principal: Principal, schedule_id: int,
              now: datetime) -> Appointment | None:
    """The doctor finishes the current patient and calls the next one in."""
    schedule = service.access_schedule(db, schedule_id)
    if principal.role is not Role.regional_admin and principal.hospital_id != schedule.hospital_id:
        raise CheckInRefused("只能叫本院的号")
    scope.authorise_session(db, principal, schedule)
    db.execute(update(Appointment).where(
        Appointment.schedule_id == schedule_id, Appointment.status == "arrived",
        Appointment.called_at.is_not(None)).values(status="fulfilled"),
        execution_options={"synchronize_session": False})
    queue = queue_for(db, schedule_id=schedule_id)
    if not queue:
        return None
    nxt = queue[0].appointment
    nxt.called_at = now
    db.flush()
    events.publish(db, PatientCalled(appointment_id=nxt.id, patient_id=nxt.patient_id))
    return nxt


def mark_noshows(db: Session, *, now: datetime, hospital_id: int | None = None) -> int:
    """Booked patients who never checked in by the end of their session are no-shows.

    One statement marks them all; run often (the sweeper does), each pass finds few.
    """
    ended = select(Schedule.id).where(Schedule.end_at <= now - NOSHOW_GRACE)
    if hospital_id is not None:
        ended = ended.where(Schedule.hospital_id == hospital_id)
    rows = db.execute(
        update(Appointment).where(Appointment.status == "booked",
                                  Appointment.schedule_id.in_(ended))
        .values(status="noshow", noshow_at=now, penalty_event=PenaltyEvent.noshow.value)
        .returning(Appointment.id, Appointment.patient_id),
        execution_options={"synchronize_session": False}).all()
    for appt_id, patient_id in rows:
        events.publish(db, NoShowRecorded(appointment_id=appt_id, patient_id=patient_id))
    return len(rows)


def mark_noshow(db: Session, *, principal: Principal, appointment_id: int,
                now: datetime) -> Appointment:
    """The window marks one booked patient who has not come as a no-show (BK-6).

    Allowed once the slot time plus the late-arrival allowance has passed, so a patient
    still on the way within the rule is never marked; counts toward the penalty rule.
    """
    appt = access_appointment(db, principal, appointment_id)
    if principal.role not in (Role.window, Role.hospital_admin, Role.regional_admin):
        raise NoShowRefused("只有窗口或管理员可以登记爽约", detail={"reason": "role"})
    if appt.status != "booked":
        raise NoShowRefused(detail={"status": appt.status})
    policy, _ = service.policy_for(db, appt.hospital_id)
    due = appt.start_at + timedelta(minutes=policy.late_after_minutes)
    if now < due:
        raise NoShowRefused(f"就诊时间后{policy.late_after_minutes}分钟仍未报到才能登记爽约",
                            detail={"due_at": due.isoformat()})
    rows = db.execute(update(Appointment).where(Appointment.id == appt.id,
                                                Appointment.status == "booked")
                      .values(status="noshow", noshow_at=now,
                              penalty_event=PenaltyEvent.noshow.value),
                      execution_options={"synchronize_session": False})
    if not rowcount(rows):
        raise NoShowRefused(detail={"status": "changed"})
    db.refresh(appt)
    events.publish(db, NoShowRecorded(appointment_id=appt.id, patient_id=appt.patient_id))
    return appt


def roster(db: Session, *, schedule_id: int) -> list[Appointment]:
    """Every appointment of a session that holds or held its slot, in slot order."""
    return list(db.scalars(select(Appointment).where(
        Appointment.schedule_id == schedule_id,
        Appointment.status.in_(("booked", "arrived", "fulfilled", "noshow")))
        .order_by(Appointment.start_at, Appointment.id)))


def in_room(db: Session, *, schedule_id: int) -> Appointment | None:
    """The patient called in last and not yet finished (the one with the doctor now)."""
    return db.scalar(select(Appointment).where(
        Appointment.schedule_id == schedule_id, Appointment.status == "arrived",
        Appointment.called_at.is_not(None)).order_by(Appointment.called_at.desc()).limit(1))
