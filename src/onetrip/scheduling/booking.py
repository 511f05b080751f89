"""Booking use cases: hold, book, confirm, cancel. Race-safe by construction.

A slot is claimed by one conditional UPDATE that succeeds only while the slot is free (or
its hold has run out), released and in a pool open to the channel; on PostgreSQL the
earliest free slot of a schedule is picked with ``FOR UPDATE SKIP LOCKED`` so concurrent
bookers spread over slots instead of queueing on one. The appointment row then enters under
partial unique indexes (one active claim per slot, per patient per department per day, per
patient per schedule). A patient's total of active appointments is counted under a
per-patient lock (an advisory lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.config import get_settings
from onetrip.db import rowcount
from onetrip.errors import PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Hospital
from onetrip.scheduling import service
from onetrip.scheduling.errors import (
    AppointmentNotFound,
    CancelDeadlinePassed,
    ChannelNotAllowed,
    HoldExpired,
    LimitReached,
    NotCancellable,
    PatientRestricted,
    PoolClosed,
    ScheduleFull,
    ScheduleNotOpen,
    SlotInPast,
    SlotNotFound,
    SlotTaken,
)
from onetrip.scheduling.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentHeld,
)
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import (
    ACTIVE_STATUSES,
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    ONLINE_CHANNELS,
    ROLE_CHANNELS,
    Channel,
    PenaltyEvent,
    PenaltyRule,
    Pool,
    PoolTimer,
    Restriction,
    booking_paused,
    booking_window,
    cancel_deadline,
    effective_pool,
    restriction_for,
)

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_PATIENT_LOCK = 7_301  # advisory-lock namespace for per-patient booking limits


def check_channel(db: Session, principal: Principal, channel: Channel,
                  schedule: Schedule) -> None:
    """May this principal book this schedule through this channel (BK-1, BK-8)?"""
    allowed = ROLE_CHANNELS.get(principal.role.value, frozenset())
    if channel not in allowed:
        raise ChannelNotAllowed(detail={"role": principal.role.value, "channel": channel.value})
    if principal.role in (Role.patient, Role.proxy):
        return
    if channel is Channel.referral:
        # BK-4/RF-1: a primary-care clinic refers into a hospital of its own alliance.
        source = db.get(Hospital, principal.hospital_id) if principal.hospital_id else None
        target = db.get_one(Hospital, schedule.hospital_id)
        if (source is None or source.kind != "primary_care" or source.alliance_id is None
                or source.alliance_id != target.alliance_id):
            raise ChannelNotAllowed("只有同一医联体的基层医疗机构可以转诊预约")
        return
    if principal.hospital_id != schedule.hospital_id:
        raise ChannelNotAllowed("只能预约本院的号源", detail={"channel": channel.value})


def restriction_of(db: Session, *, patient_id: int, hospital_id: int, rule: PenaltyRule,
                   now: datetime) -> Restriction | None:
    """The no-show restriction in force for a patient at a hospital (or its region)."""
    history = penalty_history(db, patient_id=patient_id, hospital_id=hospital_id, rule=rule)
    return restriction_for(history, rule, now, get_settings().tz)


def penalty_history(db: Session, *, patient_id: int, hospital_id: int,
                    rule: PenaltyRule) -> list[tuple[PenaltyEvent, datetime]]:
    """A patient's penalty events at a hospital (or its region, as the rule's scope says):
    the appointments' own and those other domains recorded (exam no-shows, EX-4)."""
    from onetrip.scheduling import penalties  # the one reader of other domains' events

    hospitals = penalties.hospitals_in_scope(db, hospital_id, rule.scope)
    stmt = select(Appointment.penalty_event, Appointment.cancelled_at, Appointment.noshow_at
                  ).where(Appointment.patient_id == patient_id,
                          Appointment.penalty_event.is_not(None),
                          Appointment.hospital_id.in_(hospitals))
    history: list[tuple[PenaltyEvent, datetime]] = []
    for kind, cancelled_at, noshow_at in db.execute(stmt):
        at = noshow_at or cancelled_at
        if kind is not None and at is not None:
            history.append((PenaltyEvent(kind), at))
    return history + penalties.recorded(db, patient_id=patient_id, hospitals=hospitals)


def _lock_patient(db: Session, patient_id: int) -> None:
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:ns, :pid)"),
                   {"ns": _PATIENT_LOCK, "pid": patient_id})


_APPOINTMENT = cast(Table, Appointment.__table__)
_SLOT = cast(Table, Slot.__table__)


@dataclass(frozen=True)
class Claimed:
    """The columns of a just-claimed slot that the booking needs (no second read)."""

    id: int
    start_at: datetime
    pool: Pool
    timer: PoolTimer


def _expire_holds(db: Session, now: datetime, *, patient_id: int | None = None,
                  slot_id: int | None = None) -> None:
    """Turn run-out holds into ``expired`` so they no longer count or block."""
    t = _APPOINTMENT.c
    stmt = update(_APPOINTMENT).where(t.status == "held", t.hold_expires_at <= now)
    if patient_id is not None:
        stmt = stmt.where(t.patient_id == patient_id)
    if slot_id is not None:
        stmt = stmt.where(t.slot_id == slot_id)
    db.connection().execute(stmt.values(status="expired"))


def _check_limits(db: Session, *, patient_id: int, schedule: Schedule, max_active: int,
                  now: datetime) -> None:
    t = _APPOINTMENT.c
    rows = db.connection().execute(
        select(t.schedule_id, t.department_id, t.day, t.status, t.hold_expires_at)
        .where(t.patient_id == patient_id, t.status.in_(_ACTIVE),
               t.start_at > now - timedelta(hours=12))).all()
    lapsed = [r for r in rows if r.status == "held" and r.hold_expires_at is not None
              and r.hold_expires_at <= now]
    if lapsed:
        _expire_holds(db, now, patient_id=patient_id)
    active = [r for r in rows if r not in lapsed]
    if any(r.schedule_id == schedule.id for r in active):
        raise LimitReached("您已预约过该出诊", detail={"limit": "per_schedule"})
    if any(r.department_id == schedule.department_id and r.day == schedule.day
           for r in active):
        raise LimitReached("同一科室同一天只能预约一次", detail={"limit": "per_department_day"})
    if len(active) >= max_active:
        raise LimitReached(f"有效预约最多{max_active}个", detail={"limit": "max_active",
                                                             "max": max_active})


def _claim(db: Session, *, schedule: Schedule, slot_id: int | None, pools: frozenset[Pool],
           now: datetime, hold_until: datetime | None) -> Claimed | None:
    """One conditional UPDATE: claim this slot, or the schedule's earliest open one.

    Free slots are tried first and slots whose hold ran out second, each with a condition
    the (schedule, status, start) index answers; an OR of the two would scan the schedule.
    """
    t = _SLOT.c
    phases = [(t.status == "free"), and_(t.status == "held", t.held_until <= now)]
    # On PostgreSQL the pick first skips slots other bookings have locked; only if that
    # finds nothing does it wait for them, so a schedule is called full only once the
    # bookings in flight have finished (one of them may yet roll back).
    waits = (False, True) if slot_id is None and db.get_bind().dialect.name == "postgresql" \
        else (False,)
    for lapsed_hold, state in enumerate(phases):
        conditions = [t.schedule_id == schedule.id, state, t.start_at > now,
                      service.open_to(pools, now, t)]
        for wait in waits:
            if slot_id is not None:
                target = t.id == slot_id
            else:
                pick = (select(t.id).where(*conditions).order_by(t.start_at).limit(1)
                        .with_for_update(skip_locked=not wait).scalar_subquery())
                target = t.id == pick
            stmt = (update(_SLOT).where(target, *conditions)
                    .values(status="held" if hold_until else "booked", held_until=hold_until)
                    .returning(t.id, t.start_at, t.pool, t.release_at, t.return_at,
                               t.return_pool))
            row = db.connection().execute(stmt).first()
            if row is not None:
                if lapsed_hold:
                    _expire_holds(db, now, slot_id=row.id)
                return Claimed(row.id, row.start_at, Pool(row.pool), PoolTimer(
                    row.release_at, row.return_at,
                    Pool(row.return_pool) if row.return_pool else None))
    return None


def _why_not(db: Session, *, schedule: Schedule, slot_id: int | None,
             pools: frozenset[Pool], now: datetime) -> Exception:
    if slot_id is not None:
        slot = db.get_one(Slot, slot_id)
        db.refresh(slot)
        if slot.start_at <= now:
            return SlotInPast(detail={"slot_id": slot_id})
        if slot.status in ("booked", "held", "blocked"):
            return SlotTaken(detail={"slot_id": slot_id})
        return PoolClosed(detail={"slot_id": slot_id, "pool": slot.pool})
    free = [Slot.schedule_id == schedule.id, service.claimable(now), Slot.start_at > now]
    open_to_me = db.scalar(select(func.count()).select_from(Slot).where(
        *free, service.open_to(pools, now)))
    any_free = db.scalar(select(func.count()).select_from(Slot).where(*free))
    if any_free and not open_to_me:
        return PoolClosed("该出诊剩余号源暂未向此渠道开放",
                          detail={"schedule_id": schedule.id})
    # Free slots this channel could take but did not get are held by bookings in flight.
    return ScheduleFull(detail={"schedule_id": schedule.id})


def book(db: Session, *, principal: Principal, patient_id: int, channel: Channel,
         now: datetime, slot_id: int | None = None, schedule_id: int | None = None,
         hold: bool = False) -> Appointment:
    """Book (or hold) one slot for a real-name patient.

    Raises SlotTaken, ScheduleFull, PoolClosed, SlotInPast, ScheduleNotOpen, LimitReached,
    PatientRestricted, ChannelNotAllowed; nothing is written when it raises.
    """
    if slot_id is not None:
        slot = db.get(Slot, slot_id)
        if slot is None:
            raise SlotNotFound(detail={"slot_id": slot_id})
        schedule = slot.schedule
    elif schedule_id is not None:
        schedule = service.access_schedule(db, schedule_id)
    else:
        raise SlotNotFound("请指定号源或排班")
    check_channel(db, principal, channel, schedule)
    identity_service.access_patient(db, principal, patient_id, action="appointment.book")
    if schedule.status not in BOOKABLE_SCHEDULE_STATUSES:
        raise ScheduleNotOpen(detail={"schedule_id": schedule.id, "status": schedule.status})
    policy, rule = service.policy_for(db, schedule.hospital_id)
    tz = get_settings().tz
    if booking_paused(booking_window(schedule.day, policy, tz), now):
        raise PoolClosed(f"次日号源预约已于{policy.next_day_cutoff:%H:%M}截止，"
                         f"当日号源{policy.same_day_open_time:%H:%M}开放")
    if channel in ONLINE_CHANNELS:
        restriction = restriction_of(db, patient_id=patient_id, hospital_id=schedule.hospital_id,
                                     rule=rule, now=now)
        if restriction is not None:
            raise PatientRestricted(restriction.reason,
                                    detail={"until": restriction.until.isoformat(),
                                            "count": restriction.count, "rule": restriction.rule})
    _lock_patient(db, patient_id)
    _check_limits(db, patient_id=patient_id, schedule=schedule,
                  max_active=policy.max_active_appointments, now=now)
    pools = CHANNEL_POOLS[channel]
    hold_until = now + timedelta(minutes=policy.hold_minutes) if hold else None
    try:
        with db.begin_nested():
            claimed = _claim(db, schedule=schedule, slot_id=slot_id, pools=pools, now=now,
                             hold_until=hold_until)
            if claimed is None:
                raise _why_not(db, schedule=schedule, slot_id=slot_id, pools=pools, now=now)
            appt = Appointment(
                slot_id=claimed.id, schedule_id=schedule.id, patient_id=patient_id,
                hospital_id=schedule.hospital_id, department_id=schedule.department_id,
                day=schedule.day, start_at=claimed.start_at,
                pool=(effective_pool(claimed.pool, claimed.timer, now) or claimed.pool).value,
                channel=channel.value, status="held" if hold else "booked",
                hold_expires_at=hold_until, booked_by=_who(principal),
                booked_at=None if hold else now, created_at=now,
            )
            db.add(appt)
            db.flush()
    except IntegrityError as exc:
        raise LimitReached("已有同科室同日或同一出诊的有效预约") from exc
    event = AppointmentHeld if hold else AppointmentBooked
    events.publish(db, event(appointment_id=appt.id, patient_id=patient_id))
    return appt


def _who(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.token_id or '-'}:{principal.label}"[:100]


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


def confirm(db: Session, *, principal: Principal, appointment_id: int,
            now: datetime) -> Appointment:
    """Turn a live hold into a booking; raises HoldExpired once its minutes are up."""
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
    events.publish(db, AppointmentBooked(appointment_id=appt.id, patient_id=appt.patient_id))
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
    appt = access_appointment(db, principal, appointment_id)
    if appt.status not in ("held", "booked"):
        raise NotCancellable(detail={"status": appt.status})
    policy, _rule = service.policy_for(db, appt.hospital_id)
    tz = get_settings().tz
    deadline = cancel_deadline(org_calendar.previous_working_day(appt.day), policy, tz)
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
