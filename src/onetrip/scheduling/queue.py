"""Check-in, the waiting queue, calling patients in, and no-shows (BK-6, BK-11)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.db import rowcount
from onetrip.identity.rules import ACCOUNT_ROLES, Role
from onetrip.identity.service import Principal
from onetrip.scheduling import scope, service
from onetrip.scheduling.booking import access_appointment
from onetrip.scheduling.errors import CheckInRefused, NoShowRefused
from onetrip.scheduling.events import AppointmentCheckedIn, NoShowRecorded, PatientCalled
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import (
    Arrival,
    PenaltyEvent,
    PoolPolicy,
    estimated_wait,
    queue_order,
)


def check_in_closes_at(schedule: Schedule, policy: PoolPolicy,
                       appointment: Appointment | None = None) -> datetime:
    """When a session stops taking check-ins: its planned end plus the late-arrival allowance
    (for a patient passed over, no sooner than the allowance after that).

    The one moment both sides use: a late patient is queued behind until then (BK-11), and
    only from then is a booked patient who never came a no-show (BK-6), so nobody is marked
    while still allowed to check in. A doctor running late keeps the patients already here,
    and one passed over after the session's end may still come back.
    """
    late = timedelta(minutes=policy.late_after_minutes)
    closes = schedule.end_at + late
    if appointment is not None and appointment.passed_over_at is not None:
        closes = max(closes, appointment.passed_over_at + late)
    return closes


def check_in(db: Session, *, principal: Principal, appointment_id: int, now: datetime,
             patient_id: int | None = None) -> Appointment:
    """Arrival check-in from kiosk, window or phone, within the allowed window (BK-8).

    Staff (kiosk, window, doctor, admins) name the patient found by the document presented;
    the appointment must be that patient's: a booking cannot be transferred to another
    person. The patient or their proxy checks in from their own real-name account.
    """
    appt = access_appointment(db, principal, appointment_id)
    # BK-8: check-in needs that patient's document, whoever at the hospital does it
    if principal.role not in ACCOUNT_ROLES and patient_id != appt.patient_id:
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
    # BK-11: a late arrival is queued behind, not refused, until the allowance after the end
    if now >= check_in_closes_at(schedule, policy, appt) or schedule.status == "stopped":
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
    ``now``: before the session begins the wait runs until it does, and one who came early
    for a later slot waits at least until it)."""
    schedule = service.access_schedule(db, schedule_id)
    policy, _ = service.policy_for(db, schedule.hospital_id)
    waiting = {a.id: a for a in db.scalars(select(Appointment).where(
        Appointment.schedule_id == schedule_id, Appointment.status == "arrived",
        Appointment.called_at.is_(None)))}
    late_after = timedelta(minutes=policy.late_after_minutes)
    ordered = queue_order([Arrival(a.id, a.start_at, a.checked_in_at or a.start_at,
                                   a.passed_over_at is not None)
                           for a in waiting.values()], late_after)
    out = []
    for i, x in enumerate(ordered):
        late = x.late(late_after)
        out.append(QueueEntry(waiting[x.appointment_id], i, estimated_wait(
            i, schedule.slot_minutes, now=now, starts_at=schedule.start_at,
            slot_start=None if late else x.slot_start), late))
    return out


def position_of(db: Session, *, appointment: Appointment,
                now: datetime | None = None) -> QueueEntry | None:
    return next((e for e in queue_for(db, schedule_id=appointment.schedule_id, now=now)
                 if e.appointment.id == appointment.id), None)


def _access_room(db: Session, principal: Principal, schedule_id: int) -> Schedule:
    """The session whose consulting room this principal may call patients into."""
    schedule = service.access_schedule(db, schedule_id)
    if principal.role is not Role.regional_admin and principal.hospital_id != schedule.hospital_id:
        raise CheckInRefused("只能叫本院的号")
    scope.authorise_session(db, principal, schedule)
    return schedule


def call_next(db: Session, *, principal: Principal, schedule_id: int,
              now: datetime) -> Appointment | None:
    """The doctor finishes the current patient and calls the next one in."""
    _access_room(db, principal, schedule_id)
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


def pass_over(db: Session, *, principal: Principal, schedule_id: int, now: datetime,
              appointment_id: int | None = None) -> Appointment:
    """过号: the patient called in did not come; raises CheckInRefused if nobody is called.

    Their appointment goes back to booked, as before check-in (call and check-in times
    cleared, the pass-over's kept), never to seen: the triage desk or the kiosk checks them
    in again and, having had their turn, they queue behind (BK-11), for the late allowance
    after the session's end or after being passed over, whichever is later; one who never
    comes back is a no-show then, like anyone who never came (BK-6). ``appointment_id``,
    when given, must be the patient called in, so that a page shown before another call
    passes over nobody else.
    """
    _access_room(db, principal, schedule_id)
    called = in_room(db, schedule_id=schedule_id)
    # The update is conditional: a "call next" meanwhile has finished the patient.
    if called is None or appointment_id not in (None, called.id) or not rowcount(db.execute(
            update(Appointment).where(Appointment.id == called.id,
                                      Appointment.status == "arrived",
                                      Appointment.called_at.is_not(None))
            .values(status="booked", called_at=None, checked_in_at=None, passed_over_at=now),
            execution_options={"synchronize_session": False})):
        raise CheckInRefused("没有可过号的患者：该患者不在叫号中", detail={"reason": "not_called"})
    db.refresh(called)
    return called


def mark_noshows(db: Session, *, now: datetime, hospital_id: int | None = None) -> int:
    """Booked patients who never checked in before their session stopped taking check-ins
    (its end plus the hospital's late-arrival allowance) are no-shows of their visit (BK-6).

    One statement per hospital with such sessions; run often (the sweeper does), each pass
    finds few. Both reads start from the booked appointments (an index of active ones)
    and look their sessions up by key: a pass costs what is booked, not the history.
    """
    booked = service.status_among_active(Appointment.status, "booked")
    pending = select(Appointment.hospital_id).where(booked, Appointment.start_at <= now)
    if hospital_id is not None:
        pending = pending.where(Appointment.hospital_id == hospital_id)
    policies = service.policies_for(db, set(db.scalars(pending.distinct())))
    rows: list[Any] = []
    for hid, (policy, _rule) in sorted(policies.items()):
        closes = now - timedelta(minutes=policy.late_after_minutes)
        closed = select(Schedule.id).where(Schedule.id == Appointment.schedule_id,
                                           Schedule.end_at <= closes)
        rows += db.execute(
            update(Appointment).where(
                booked, Appointment.hospital_id == hid, Appointment.start_at <= closes,
                closed.exists(),
                # one passed over may come back for the allowance after it
                or_(Appointment.passed_over_at.is_(None),
                    Appointment.passed_over_at <= closes))
            # BK-6: the no-show is the visit's: it counts on the day of the slot (the
            # calendar year of the Beijing rule), however late the sweeper marks it
            .values(status="noshow", noshow_at=Appointment.start_at,
                    penalty_event=PenaltyEvent.noshow.value)
            .returning(Appointment.id, Appointment.patient_id),
            execution_options={"synchronize_session": False}).all()
    for appt_id, patient_id in rows:
        events.publish(db, NoShowRecorded(appointment_id=appt_id, patient_id=patient_id,
                                          marked_at=now))
    return len(rows)


def mark_noshow(db: Session, *, principal: Principal, appointment_id: int,
                now: datetime) -> Appointment:
    """The window marks one booked patient who has not come as a no-show (BK-6).

    Allowed once the session stops taking check-ins (its end plus the late-arrival
    allowance), so a late patient who may still check in and be queued behind is never
    marked; counts toward the penalty rule on the day of the visit.
    """
    appt = access_appointment(db, principal, appointment_id)
    if principal.role not in (Role.window, Role.hospital_admin, Role.regional_admin):
        raise NoShowRefused("只有窗口或管理员可以登记爽约", detail={"reason": "role"})
    if appt.status != "booked":
        raise NoShowRefused(detail={"status": appt.status})
    policy, _ = service.policy_for(db, appt.hospital_id)
    due = check_in_closes_at(db.get_one(Schedule, appt.schedule_id), policy, appt)
    if now < due:
        raise NoShowRefused(f"出诊结束{policy.late_after_minutes}分钟后仍未报到才能登记爽约",
                            detail={"due_at": due.isoformat()})
    rows = db.execute(update(Appointment).where(Appointment.id == appt.id,
                                                Appointment.status == "booked")
                      .values(status="noshow", noshow_at=Appointment.start_at,
                              penalty_event=PenaltyEvent.noshow.value),
                      execution_options={"synchronize_session": False})
    if not rowcount(rows):
        raise NoShowRefused(detail={"status": "changed"})
    db.refresh(appt)
    events.publish(db, NoShowRecorded(appointment_id=appt.id, patient_id=appt.patient_id,
                                      marked_at=now))
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


def sessions_with_waiting(db: Session, schedule_ids: Collection[int]) -> set[int]:
    """Which of these sessions still have checked-in patients waiting to be called."""
    if not schedule_ids:
        return set()
    return set(db.scalars(select(Appointment.schedule_id).where(
        Appointment.schedule_id.in_(list(schedule_ids)), Appointment.status == "arrived",
        Appointment.called_at.is_(None)).distinct()))
