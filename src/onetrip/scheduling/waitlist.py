"""候补 waitlist: a freed slot is held for the next waiting patient, offered, then passed on."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.db import rowcount
from onetrip.identity import service as identity_service
from onetrip.identity.service import Principal
from onetrip.scheduling import service
from onetrip.scheduling.errors import OfferUnavailable, WaitlistClosed
from onetrip.scheduling.events import AppointmentBooked, WaitlistOffered
from onetrip.scheduling.models import Appointment, Slot, WaitlistEntry
from onetrip.scheduling.rules import (
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    Channel,
    Pool,
    PoolTimer,
    effective_pool,
)


def join(db: Session, *, principal: Principal, patient_id: int, schedule_id: int,
         channel: Channel, now: datetime) -> WaitlistEntry:
    """Wait for a slot of a full schedule; one active entry per patient and schedule."""
    from onetrip.scheduling.booking import check_channel

    identity_service.access_patient(db, principal, patient_id)
    schedule = service.access_schedule(db, schedule_id)
    check_channel(db, principal, channel, schedule)
    if schedule.status not in BOOKABLE_SCHEDULE_STATUSES or schedule.end_at <= now:
        raise WaitlistClosed("该出诊已停诊或已结束")
    if service.free_slots(db, schedule=schedule, channel=channel, now=now):
        raise WaitlistClosed("该出诊仍有号源，请直接预约")
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
    """Hold a just-freed slot for the first waiting patient whose channel reaches its pool."""
    slot = db.get_one(Slot, slot_id)
    db.refresh(slot)
    if slot.status != "free" or slot.start_at <= now:
        return None
    policy, _ = service.policy_for(db, slot.schedule.hospital_id)
    timer = PoolTimer(slot.release_at, slot.return_at,
                      Pool(slot.return_pool) if slot.return_pool else None)
    pool_now = effective_pool(Pool(slot.pool), timer, now)
    waiting = db.scalars(select(WaitlistEntry).where(
        WaitlistEntry.schedule_id == slot.schedule_id, WaitlistEntry.status == "waiting")
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id))
    for entry in waiting:
        if pool_now is None or pool_now not in CHANNEL_POOLS[Channel(entry.channel)]:
            continue
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


def accept(db: Session, *, principal: Principal, entry_id: int, now: datetime) -> Appointment:
    """Take the offered slot before the offer expires."""
    entry = db.get(WaitlistEntry, entry_id)
    if entry is None:
        raise OfferUnavailable()
    identity_service.access_patient(db, principal, entry.patient_id)
    if entry.status != "offered" or entry.offer_expires_at is None or \
            entry.offer_expires_at <= now or entry.offered_slot_id is None:
        raise OfferUnavailable(detail={"status": entry.status})
    slot = db.get_one(Slot, entry.offered_slot_id)
    done = rowcount(db.execute(update(Slot).where(Slot.id == slot.id, Slot.status == "held",
                                         Slot.held_until > now)
                      .values(status="booked", held_until=None),
                      execution_options={"synchronize_session": False}))
    if not done:
        raise OfferUnavailable()
    db.refresh(slot)
    schedule = slot.schedule
    appt = Appointment(
        slot_id=slot.id, schedule_id=schedule.id, patient_id=entry.patient_id,
        hospital_id=schedule.hospital_id, department_id=schedule.department_id,
        day=schedule.day, start_at=slot.start_at, pool=slot.pool, channel=entry.channel,
        status="booked", booked_by=f"waitlist:{entry.id}", booked_at=now, created_at=now)
    db.add(appt)
    db.flush()
    entry.status, entry.appointment_id = "accepted", appt.id
    events.publish(db, AppointmentBooked.of(appt))
    return appt


def expire_offers(db: Session, *, now: datetime) -> int:
    """Offers past their time pass to the next patient, or the slot returns to its pool."""
    stale = list(db.scalars(select(WaitlistEntry).where(
        WaitlistEntry.status == "offered", WaitlistEntry.offer_expires_at <= now)))
    for entry in stale:
        entry.status = "expired"
        if entry.offered_slot_id is not None:
            db.execute(update(Slot).where(Slot.id == entry.offered_slot_id,
                                          Slot.status == "held", Slot.held_until <= now)
                       .values(status="free", held_until=None),
                       execution_options={"synchronize_session": False})
            db.flush()
            offer_freed_slot(db, slot_id=entry.offered_slot_id, now=now)
    return len(stale)


def entries_for(db: Session, *, patient_id: int) -> list[WaitlistEntry]:
    return list(db.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient_id)
                           .order_by(WaitlistEntry.created_at.desc())))
