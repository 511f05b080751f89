"""停诊/替诊 (BK-6): a substitute takes the session, or every patient gets offers or a notice.

Stopping a session never drops a patient silently: each active appointment is cancelled
with a rebooking offer holding the nearest equivalent slot (same department and service
level, same or following days) plus alternatives, accepted in one action; where nothing
equivalent is free the offer is a notice with the fee flagged for refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.db import rowcount
from onetrip.errors import InvalidInput
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Practitioner
from onetrip.scheduling import claims, scope, service, waitlist
from onetrip.scheduling.errors import (
    LimitReached,
    OfferUnavailable,
    ScheduleNotOpen,
    ScheduleOver,
)
from onetrip.scheduling.events import (
    AppointmentRebooked,
    RebookingOffered,
    ScheduleStopped,
    ScheduleSubstituted,
    WaitlistClosed,
)
from onetrip.scheduling.models import (
    Appointment,
    RebookingOffer,
    Schedule,
    Slot,
    WaitlistEntry,
)
from onetrip.scheduling.rules import ACTIVE_STATUSES, BOOKABLE_SCHEDULE_STATUSES

SEARCH_DAYS = 7
OPTIONS = 3
HOLD_FOR = timedelta(hours=24)
#: How many of the nearest free slots a patient's options are picked from, beyond those
#: already shown to the patients of the same stop.
NEAREST = 200
_ACTIVE = [s.value for s in ACTIVE_STATUSES]


@dataclass(frozen=True)
class StopResult:
    schedule: Schedule
    offers: list[RebookingOffer]


def _authorise(db: Session, principal: Principal, schedule: Schedule) -> None:
    """The window and the hospital's admins; a department admin for its departments only."""
    if principal.role is Role.window and principal.hospital_id == schedule.hospital_id:
        return
    scope.authorise_department(db, principal, schedule.hospital_id, schedule.department_id)


def substitute(db: Session, *, principal: Principal, schedule_id: int, practitioner_id: int,
               reason: str, now: datetime) -> Schedule:
    """替诊: another doctor of the hospital takes the session with its appointments."""
    schedule = service.access_schedule(db, schedule_id)
    _authorise(db, principal, schedule)
    _still_to_run(schedule, now)
    doctor = db.get(Practitioner, practitioner_id)
    if doctor is None or doctor.hospital_id != schedule.hospital_id or \
            doctor.id == schedule.practitioner_id:
        raise InvalidInput("替诊医生须为本院其他医生", detail={"practitioner_id": practitioner_id})
    managed = scope.managed_departments(db, principal)
    if managed is not None and not any(d.id in managed for d in doctor.departments):
        # A department admin hands a session only to a doctor of its own departments.
        raise InvalidInput("替诊医生须为本科室医生", detail={"practitioner_id": practitioner_id})
    if _in_clinic_meanwhile(db, doctor.id, schedule):
        raise InvalidInput("替诊医生同一时段已有出诊", detail={"practitioner_id": practitioner_id})
    schedule.status, schedule.substitute_practitioner_id = "substituted", doctor.id
    schedule.status_reason = reason[:200]
    affected = tuple(a.id for a in _active(db, schedule.id))
    db.flush()
    service.record_change(db, principal, "schedule.substitute", schedule_id=schedule.id,
                          substitute=doctor.code, reason=reason, appointments=len(affected))
    events.publish(db, ScheduleSubstituted(schedule_id=schedule.id,
                                           substitute_practitioner_id=doctor.id,
                                           affected_appointment_ids=affected,
                                           substituted_at=now))
    return schedule


def _in_clinic_meanwhile(db: Session, doctor_id: int, schedule: Schedule) -> bool:
    """Whether the doctor holds another session overlapping this one: their own (unless
    handed over) or one they already substitute for. One doctor sees one room's patients."""
    return db.scalar(select(Schedule.id).where(
        Schedule.id != schedule.id, Schedule.status.in_(BOOKABLE_SCHEDULE_STATUSES),
        or_(and_(Schedule.practitioner_id == doctor_id, Schedule.status == "open"),
            Schedule.substitute_practitioner_id == doctor_id),
        Schedule.start_at < schedule.end_at, Schedule.end_at > schedule.start_at,
    ).limit(1)) is not None


def _still_to_run(schedule: Schedule, now: datetime) -> None:
    """A session is stopped or handed on only while it is open and not yet over: once it
    has run, its patients were seen or are no-shows (BK-6), not owed an offer."""
    if schedule.status not in BOOKABLE_SCHEDULE_STATUSES:
        raise ScheduleNotOpen()
    if now >= schedule.end_at:
        raise ScheduleOver(detail={"schedule_id": schedule.id,
                                   "end_at": schedule.end_at.isoformat()})


def _active(db: Session, schedule_id: int) -> list[Appointment]:
    """BK-6: every appointment that still stands, a patient already checked in too."""
    return list(db.scalars(select(Appointment).where(
        Appointment.schedule_id == schedule_id, Appointment.status.in_(_ACTIVE))
        .order_by(Appointment.start_at)))


def _equivalents(db: Session, schedule: Schedule, now: datetime, taken: set[int],
                 patient_id: int) -> list[Slot]:
    """Free slots of open sessions of the same department and service level, one a session:
    the nearest not yet shown to another patient of the stop, then (BK-6: no refund notice
    while an equivalent slot is free) those shown only as someone's alternative. The first
    is one nobody was shown wherever there is one; the others follow nearest first."""
    mine = set(db.scalars(select(Appointment.schedule_id).where(
        Appointment.patient_id == patient_id, Appointment.status.in_(_ACTIVE))))
    rows = db.scalars(
        select(Slot).join(Schedule, Schedule.id == Slot.schedule_id).where(
            Schedule.department_id == schedule.department_id,
            Schedule.service_level == schedule.service_level,
            Schedule.status.in_(BOOKABLE_SCHEDULE_STATUSES),
            Schedule.id != schedule.id, Schedule.day >= schedule.day,
            Schedule.day <= schedule.day + timedelta(days=SEARCH_DAYS),
            service.claimable(now), Slot.start_at > now)
        # Read past the slots shown already: the read grows with the patients of the stop.
        .order_by(Slot.start_at, Slot.id).limit(NEAREST + len(taken)))
    candidates = [s for s in rows if s.schedule_id not in mine]
    out: list[Slot] = []
    seen_schedules: set[int] = set()
    for slot in [*(s for s in candidates if s.id not in taken),
                 *(s for s in candidates if s.id in taken)]:
        if slot.schedule_id in seen_schedules:
            continue
        out.append(slot)
        seen_schedules.add(slot.schedule_id)
        if len(out) == OPTIONS:
            break
    return out[:1] + sorted(out[1:], key=lambda s: (s.start_at, s.id))


def _give(db: Session, offer: RebookingOffer, schedule: Schedule, now: datetime,
          taken: set[int]) -> RebookingOffer:
    """Fill the offer with the equivalent slots free now, the first held for the patient,
    or make it a notice with the fee flagged for refund where nothing equivalent is free;
    store it and tell the patient (from ``now``: a renewed offer is told afresh)."""
    options = _equivalents(db, schedule, now, taken, offer.patient_id)
    held = None
    if options:
        # The held slot's hold ends when it starts; the offer lasts while any option can
        # still be taken (BK-6: held for 24 hours, with its alternatives).
        hold = (update(Slot).where(Slot.id == options[0].id, service.claimable(now))
                .values(status="held", held_until=min(now + HOLD_FOR, options[0].start_at)))
        if rowcount(db.execute(hold, execution_options={"synchronize_session": False})):
            held = options[0].id
            # A hold that had run out on that slot ends now, as a booking's claim ends it.
            claims.expire_holds(db, now, slot_ids=[held])
    taken.update(s.id for s in options)
    offer.slot_ids, offer.held_slot_id = [s.id for s in options], held
    offer.expires_at = min(now + HOLD_FOR, max(s.start_at for s in options)) \
        if options else None
    offer.note = "已为您保留最近的同级别号源" if options else "近期无同级别号源，挂号费将退还"
    offer.refund_flagged = True
    db.add(offer)
    db.flush()
    events.publish(db, RebookingOffered(appointment_id=offer.appointment_id,
                                        patient_id=offer.patient_id, offer_id=offer.id,
                                        offered_at=now))
    return offer


def stop_clinic(db: Session, *, principal: Principal, schedule_id: int, reason: str,
                now: datetime) -> StopResult:
    """停诊: block the free slots, cancel each appointment with an offer or a notice."""
    schedule = service.access_schedule(db, schedule_id)
    _authorise(db, principal, schedule)
    _still_to_run(schedule, now)
    schedule.status, schedule.status_reason = "stopped", reason[:200]
    # The patient with the doctor as the session stops has been seen (BK-11), not refunded.
    db.execute(update(Appointment).where(
        Appointment.schedule_id == schedule.id, Appointment.status == "arrived",
        Appointment.called_at.is_not(None)).values(status="fulfilled"),
        execution_options={"synchronize_session": False})
    db.execute(update(Slot).where(Slot.schedule_id == schedule.id,
                                  Slot.status.in_(("free", "held")))
               .values(status="blocked", held_until=None),
               execution_options={"synchronize_session": False})
    # BK-6: patients of an earlier stop whose offer held them a slot of this session lose it
    # with the rest; each gets a new offer (or a notice) as this session's patients do. Read
    # after blocking: an offer accepted or declined meanwhile has let go of its slot.
    bumped = list(db.scalars(select(RebookingOffer).join(
        Slot, Slot.id == RebookingOffer.held_slot_id).where(
        Slot.schedule_id == schedule.id, Slot.status == "blocked",
        RebookingOffer.status == "open", RebookingOffer.expires_at > now)
        .order_by(RebookingOffer.id)))
    offers: list[RebookingOffer] = []
    taken: set[int] = set()
    for appt in _active(db, schedule.id):
        appt.status, appt.cancelled_at = "cancelled", now
        appt.cancel_reason = f"停诊：{reason}"[:200]
        db.flush()
        offers.append(_give(db, RebookingOffer(
            appointment_id=appt.id, patient_id=appt.patient_id, created_at=now),
            schedule, now, taken))
    own = len(offers)
    for offer in bumped:
        earlier = db.get_one(Appointment, offer.appointment_id)
        offers.append(_give(db, offer, db.get_one(Schedule, earlier.schedule_id), now, taken))
    waiting = _close_waitlist(db, schedule.id, now)
    service.record_change(db, principal, "schedule.stop", schedule_id=schedule.id,
                          reason=reason, appointments=own, reoffered=len(bumped),
                          offered=sum(1 for o in offers if o.slot_ids), waitlist=waiting)
    events.publish(db, ScheduleStopped(
        schedule_id=schedule.id, affected_appointment_ids=tuple(o.appointment_id for o in offers)))
    return StopResult(schedule, offers)


def _close_waitlist(db: Session, schedule_id: int, now: datetime) -> int:
    """The session's waiting patients (an offered slot is blocked with the rest) are told
    the session will not take place: nobody is left waiting for it."""
    entries = list(db.scalars(select(WaitlistEntry).where(
        WaitlistEntry.schedule_id == schedule_id,
        WaitlistEntry.status.in_(("waiting", "offered")))))
    for entry in entries:
        entry.status = "closed"
        events.publish(db, WaitlistClosed(entry_id=entry.id, patient_id=entry.patient_id,
                                          schedule_id=schedule_id, closed_at=now))
    db.flush()
    return len(entries)


def offers_for(db: Session, *, patient_id: int) -> list[RebookingOffer]:
    return list(db.scalars(select(RebookingOffer).where(RebookingOffer.patient_id == patient_id)
                           .order_by(RebookingOffer.created_at.desc())))


def offers_of_schedule(db: Session, *, schedule_id: int) -> list[RebookingOffer]:
    return list(db.scalars(select(RebookingOffer).join(
        Appointment, Appointment.id == RebookingOffer.appointment_id)
        .where(Appointment.schedule_id == schedule_id).order_by(RebookingOffer.id)))


def accept_offer(db: Session, *, principal: Principal, offer_id: int, slot_id: int,
                 now: datetime) -> Appointment:
    """One tap: take one of the offered slots; the old appointment's fee carries over."""
    offer = db.get(RebookingOffer, offer_id)
    if offer is None:
        raise OfferUnavailable()
    # Audited as the booking it makes, as a direct booking is.
    identity_service.access_patient(db, principal, offer.patient_id, action="appointment.book")
    if offer.status != "open" or slot_id not in offer.slot_ids:
        raise OfferUnavailable(detail={"status": offer.status})
    old = db.get_one(Appointment, offer.appointment_id)
    mine = slot_id == offer.held_slot_id and offer.expires_at is not None and \
        offer.expires_at > now
    cond = (Slot.status == "held") if mine else service.claimable(now)
    try:
        with db.begin_nested():
            if not rowcount(db.execute(
                    update(Slot).where(Slot.id == slot_id, cond, Slot.start_at > now)
                    .values(status="booked", held_until=None),
                    execution_options={"synchronize_session": False})):
                raise OfferUnavailable("该号源已被他人预约，请选择其他号源")
            if not mine:  # a hold that had run out on the slot ends, as a booking ends it
                claims.expire_holds(db, now, slot_ids=[slot_id])
            if offer.held_slot_id and offer.held_slot_id != slot_id:
                service.free_held(db, [offer.held_slot_id])
            slot = db.get_one(Slot, slot_id)
            db.refresh(slot)
            schedule = slot.schedule
            appt = Appointment(
                slot_id=slot.id, schedule_id=schedule.id, patient_id=offer.patient_id,
                hospital_id=schedule.hospital_id, department_id=schedule.department_id,
                day=schedule.day, start_at=slot.start_at, pool=slot.pool,
                channel=old.channel, status="booked", booked_by=f"rebooking:{offer.id}",
                booked_at=now, created_at=now, rebooked_from_id=old.id)
            db.add(appt)
            db.flush()
    except IntegrityError as exc:
        # BK-8: the patient booked that session, or that department that day, meanwhile.
        raise LimitReached("已有同科室同日或同一出诊的有效预约，请选择其他号源") from exc
    offer.status, offer.refund_flagged = "accepted", False
    db.flush()
    offer.new_appointment_id = appt.id
    if offer.held_slot_id and offer.held_slot_id != slot_id:
        waitlist.offer_freed_slots(db, slot_ids=[offer.held_slot_id], now=now)
    events.publish(db, AppointmentRebooked(appointment_id=appt.id, patient_id=appt.patient_id,
                                           previous_id=old.id))
    return appt


def decline_offer(db: Session, *, principal: Principal, offer_id: int,
                  now: datetime) -> RebookingOffer:
    """Decline the offers: the held slot is freed and the fee stays flagged for refund."""
    offer = db.get(RebookingOffer, offer_id)
    if offer is None:
        raise OfferUnavailable()
    identity_service.access_patient(db, principal, offer.patient_id)
    if offer.status != "open":
        raise OfferUnavailable(detail={"status": offer.status})
    if offer.held_slot_id:
        service.free_held(db, [offer.held_slot_id])
    offer.status = "declined"
    db.flush()
    if offer.held_slot_id:
        # BK-6: the slot it frees goes to that session's waitlist first.
        waitlist.offer_freed_slots(db, slot_ids=[offer.held_slot_id], now=now)
    return offer
