"""候补 waitlist: a freed slot is held for the next waiting patient, offered, then passed on."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeGuard

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.db import rowcount
from onetrip.identity import service as identity_service
from onetrip.identity.service import Principal
from onetrip.scheduling import engine, service
from onetrip.scheduling.errors import (
    LimitReached,
    OfferUnavailable,
    PatientRestricted,
    WaitlistClosed,
)
from onetrip.scheduling.events import AppointmentBooked, WaitlistOffered
from onetrip.scheduling.models import Appointment, Schedule, Slot, WaitlistEntry
from onetrip.scheduling.rules import (
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    ONLINE_CHANNELS,
    Channel,
    Pool,
    PoolTimer,
    Restriction,
    effective_pool,
)


def join(db: Session, *, principal: Principal, patient_id: int, schedule_id: int,
         channel: Channel, now: datetime) -> WaitlistEntry:
    """Wait for a slot of a full schedule; one active entry per patient and schedule."""
    from onetrip.scheduling.booking import check_channel

    # ID-3: a merged duplicate waits as its surviving record, as it would book.
    patient_id = identity_service.access_patient(db, principal, patient_id).id
    schedule = service.access_schedule(db, schedule_id)
    check_channel(db, principal, channel, schedule)
    if schedule.status not in BOOKABLE_SCHEDULE_STATUSES or schedule.end_at <= now:
        raise WaitlistClosed("该出诊已停诊或已结束")
    if service.free_slots(db, schedule=schedule, channel=channel, now=now):
        raise WaitlistClosed("该出诊仍有号源，请直接预约")
    _refuse_restricted(db, patient_id=patient_id, schedule=schedule, channel=channel, now=now)
    refusal = _over_limits(db, {patient_id}, schedule, now).get(patient_id)
    if _holds_session(refusal):
        # BK-8: one appointment per patient and session; theirs is not waited for twice.
        # (Another visit of the department that day may be given up: they may wait.)
        raise refusal
    existing = db.scalar(select(WaitlistEntry).where(
        WaitlistEntry.patient_id == patient_id, WaitlistEntry.schedule_id == schedule_id,
        WaitlistEntry.status.in_(("waiting", "offered"))))
    if existing is not None:
        return existing
    entry = WaitlistEntry(schedule_id=schedule_id, patient_id=patient_id, channel=channel.value,
                          status="waiting", created_at=now)
    db.add(entry)
    db.flush()
    return entry


def offer_freed_slot(db: Session, *, slot_id: int, now: datetime) -> WaitlistEntry | None:
    """Hold a just-freed slot for the first waiting patient whose channel reaches its pool;
    the waits of patients who hold the session already end on the way."""
    slot = db.get_one(Slot, slot_id)
    db.refresh(slot)
    if slot.status != "free" or slot.start_at <= now:
        return None
    policy, _ = service.policy_for(db, slot.schedule.hospital_id)
    timer = PoolTimer(slot.release_at, slot.return_at,
                      Pool(slot.return_pool) if slot.return_pool else None)
    pool_now = effective_pool(Pool(slot.pool), timer, now)
    waiting = list(db.scalars(select(WaitlistEntry).where(
        WaitlistEntry.schedule_id == slot.schedule_id, WaitlistEntry.status == "waiting")
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)))
    over = _over_limits(db, {e.patient_id for e in waiting}, slot.schedule, now)
    for entry in waiting:
        if _holds_session(over.get(entry.patient_id)):
            # BK-8: they booked this session another way (the window, a kiosk) and could
            # not take a second slot of it. Their wait is met, so it ends as leaving ends
            # it, instead of holding the slot from those behind them.
            entry.status = "cancelled"
            continue
        # Another limit (a visit to the department that day) is no reason to pass them
        # over: they may give that visit up while the offer lasts.
        if pool_now is None or pool_now not in CHANNEL_POOLS[Channel(entry.channel)]:
            continue
        if _restricted(db, entry, slot.schedule, now):
            continue  # BK-6: they could not accept; they keep their place for later
        expires = min(now + timedelta(minutes=policy.waitlist_offer_minutes), slot.start_at)
        claimed = rowcount(db.execute(
            update(Slot).where(Slot.id == slot.id, Slot.status == "free")
            .values(status="held", held_until=expires),
            execution_options={"synchronize_session": False}))
        if not claimed:
            return None
        entry.status, entry.offered_slot_id, entry.offer_expires_at = "offered", slot.id, expires
        db.flush()
        events.publish(db, WaitlistOffered(entry_id=entry.id, patient_id=entry.patient_id,
                                           slot_id=slot.id, offered_at=now))
        return entry
    return None


def offer_freed_slots(db: Session, *, slot_ids: list[int], now: datetime) -> int:
    """``offer_freed_slot`` for each of these slots whose session has patients waiting (one
    read finds them: most freed slots have nobody waiting). Returns the offers made."""
    if not slot_ids:
        return 0
    waited = db.scalars(select(Slot.id).join(
        WaitlistEntry, WaitlistEntry.schedule_id == Slot.schedule_id).where(
        Slot.id.in_(slot_ids), WaitlistEntry.status == "waiting").distinct()).all()
    return sum(1 for slot_id in sorted(waited)
               if offer_freed_slot(db, slot_id=slot_id, now=now) is not None)


def accept(db: Session, *, principal: Principal, entry_id: int, now: datetime) -> Appointment:
    """Take the offered slot before the offer expires."""
    entry = db.get(WaitlistEntry, entry_id)
    if entry is None:
        raise OfferUnavailable()
    # Audited as the booking it makes, as a direct booking is.
    identity_service.access_patient(db, principal, entry.patient_id, action="appointment.book")
    if entry.status != "offered" or entry.offer_expires_at is None or \
            entry.offer_expires_at <= now or entry.offered_slot_id is None:
        raise OfferUnavailable(detail={"status": entry.status})
    slot = db.get_one(Slot, entry.offered_slot_id)
    schedule = slot.schedule
    # BK-6, BK-8: an offer is a booking like any other, under the same restriction and limits.
    _refuse_restricted(db, patient_id=entry.patient_id, schedule=schedule,
                       channel=Channel(entry.channel), now=now)
    _refuse_over_limits(db, patient_id=entry.patient_id, schedule=schedule, now=now)
    try:
        with db.begin_nested():
            done = rowcount(db.execute(
                update(Slot).where(Slot.id == slot.id, Slot.status == "held",
                                   Slot.held_until > now)
                .values(status="booked", held_until=None),
                execution_options={"synchronize_session": False}))
            if not done:
                raise OfferUnavailable()
            appt = Appointment(
                slot_id=slot.id, schedule_id=schedule.id, patient_id=entry.patient_id,
                hospital_id=schedule.hospital_id, department_id=schedule.department_id,
                day=schedule.day, start_at=slot.start_at, pool=slot.pool,
                channel=entry.channel, status="booked", booked_by=f"waitlist:{entry.id}",
                booked_at=now, created_at=now)
            db.add(appt)
            db.flush()
    except IntegrityError as exc:
        # A booking of the same patient that committed meanwhile: the unique indexes win.
        raise LimitReached("已有同科室同日或同一出诊的有效预约") from exc
    db.refresh(slot)
    entry.status, entry.appointment_id = "accepted", appt.id
    events.publish(db, AppointmentBooked.of(appt))
    return appt


def leave(db: Session, *, principal: Principal, entry_id: int,
          now: datetime) -> WaitlistEntry:
    """取消候补: the patient (or staff for them) stops waiting. A slot offered to them and not
    yet taken passes at once to the next in line, or back to its pool."""
    entry = db.get(WaitlistEntry, entry_id)
    if entry is None:
        raise WaitlistClosed("没有这条候补记录", detail={"entry_id": entry_id})
    identity_service.access_patient(db, principal, entry.patient_id)
    offered = entry.offered_slot_id if entry.status == "offered" else None
    # The slot first, then the entry: the order ``accept`` takes them in, so a leave and an
    # accept at the same moment wait for one another instead of deadlocking; whichever
    # takes the slot first wins it.
    if offered is not None:
        service.free_held(db, [offered])
    if not rowcount(db.execute(
            update(WaitlistEntry).where(WaitlistEntry.id == entry.id,
                                        WaitlistEntry.status.in_(("waiting", "offered")))
            .values(status="cancelled"), execution_options={"synchronize_session": False})):
        raise WaitlistClosed("该候补已结束", detail={"status": entry.status})
    db.refresh(entry)
    if offered is not None:
        offer_freed_slot(db, slot_id=offered, now=now)
    return entry


def position(db: Session, entry: WaitlistEntry) -> int | None:
    """How many patients wait before this one for its session (None once it no longer
    waits). Those ahead who cannot take a slot when it frees are passed over for it."""
    if entry.status != "waiting":
        return None
    w = WaitlistEntry
    return db.scalar(select(func.count()).select_from(w).where(
        w.schedule_id == entry.schedule_id, w.status == "waiting",
        or_(w.created_at < entry.created_at,
            and_(w.created_at == entry.created_at, w.id < entry.id)))) or 0


def _restriction(db: Session, *, patient_id: int, schedule: Schedule, channel: Channel,
                 now: datetime) -> Restriction | None:
    """BK-6: the no-show restriction that stops this patient on an online channel."""
    from onetrip.scheduling.booking import restriction_of

    if channel not in ONLINE_CHANNELS:
        return None
    rule = service.policy_for(db, schedule.hospital_id)[1]
    return restriction_of(db, patient_id=patient_id, hospital_id=schedule.hospital_id,
                          rule=rule, now=now)


def _restricted(db: Session, entry: WaitlistEntry, schedule: Schedule, now: datetime) -> bool:
    return _restriction(db, patient_id=entry.patient_id, schedule=schedule,
                        channel=Channel(entry.channel), now=now) is not None


def _refuse_restricted(db: Session, *, patient_id: int, schedule: Schedule, channel: Channel,
                       now: datetime) -> None:
    """BK-6: a no-show restriction stops the online channels, on the waitlist too."""
    restriction = _restriction(db, patient_id=patient_id, schedule=schedule, channel=channel,
                               now=now)
    if restriction is not None:
        raise PatientRestricted(restriction.reason, detail={
            "until": restriction.until.isoformat(), "count": restriction.count,
            "rule": restriction.rule})


def _over_limits(db: Session, patient_ids: set[int], schedule: Schedule,
                 now: datetime) -> dict[int, LimitReached]:
    """BK-8: why each of these patients may not book this session now, by the engine's own
    limits (their appointments read at once); a patient absent from the answer may."""
    if not patient_ids:
        return {}
    active = engine.active_appointments(db, patient_ids, now)
    limit = service.policy_for(db, schedule.hospital_id)[0].max_active_appointments
    refusals = {pid: engine.limit_refusal(active[pid], schedule, limit) for pid in patient_ids}
    return {pid: r for pid, r in refusals.items() if r is not None}


def _holds_session(refusal: LimitReached | None) -> TypeGuard[LimitReached]:
    """The refusal is that the patient holds the session already (their wait is met)."""
    return refusal is not None and refusal.detail["limit"] == "per_schedule"


def _refuse_over_limits(db: Session, *, patient_id: int, schedule: Schedule,
                        now: datetime) -> None:
    """BK-8: the per-patient limits of a direct booking, counted under the patient's
    booking lock as a direct booking counts them."""
    engine.lock_patients(db, [patient_id])
    refusal = _over_limits(db, {patient_id}, schedule, now).get(patient_id)
    if refusal is not None:
        raise refusal


def expire_offers(db: Session, *, now: datetime) -> int:
    """Offers past their time pass to the next patient, or the slot returns to its pool."""
    stale = list(db.scalars(select(WaitlistEntry).where(
        WaitlistEntry.status == "offered", WaitlistEntry.offer_expires_at <= now)))
    for entry in stale:
        entry.status = "expired"
        if entry.offered_slot_id is not None:
            service.free_held(db, [entry.offered_slot_id], ran_out_by=now)
            db.flush()
            offer_freed_slot(db, slot_id=entry.offered_slot_id, now=now)
    return len(stale)


def entries_for(db: Session, *, patient_id: int) -> list[WaitlistEntry]:
    return list(db.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient_id)
                           .order_by(WaitlistEntry.created_at.desc())))
