"""From domain events to outbox rows, inside the transaction that caused them (RM-1).

``events.on_commit`` runs these handlers just before the booking change commits: a
rolled-back booking queues nothing, a committed one never loses its messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.identity.empi import PatientsMerged, PatientsUnmerged
from onetrip.notify import rules, service
from onetrip.notify.service import Draft
from onetrip.notify.visit import appointment_vars, appointments_vars, visit_vars, when
from onetrip.scheduling.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCheckedIn,
    AppointmentRebooked,
    NoShowRecorded,
    PatientCalled,
    RebookingOffered,
    ScheduleSubstituted,
    WaitlistClosed,
    WaitlistOffered,
)
from onetrip.scheduling.models import (
    Appointment,
    MergeMove,
    RebookingOffer,
    Schedule,
    Slot,
    WaitlistEntry,
)


def _queue_bookings(db: Session, booked: Sequence[AppointmentBooked]) -> None:
    """RM-1: the confirmation now, the reminders the day before and one hour before, for every
    booking at once (a batch of bookings: one lookup and one insert)."""
    policy, tz = service.reminder_policy(), get_settings().tz
    drafts = []
    at = max((b.booked_at for b in booked if b.booked_at), default=None) or utcnow()
    for appt, variables in zip(booked, appointments_vars(db, booked, at=at), strict=True):
        booked_at = appt.booked_at or utcnow()
        due = {"booking_confirmed": booked_at, **rules.scheduled_reminders(
            start_at=appt.start_at, booked_at=booked_at, policy=policy, tz=tz)}
        drafts += [Draft(appt.patient_id, template, variables, send_at,
                         f"{template}:{appt.appointment_id}", appt.appointment_id, appt.day,
                         hospital_id=appt.hospital_id)
                   for template, send_at in due.items()]
    service.queue(db, drafts)


@events.on_commit_many(AppointmentBooked)
def on_booked(db: Session, evs: list[AppointmentBooked]) -> None:
    _queue_bookings(db, evs)


@events.on_commit(AppointmentRebooked)
def on_rebooked(db: Session, ev: AppointmentRebooked) -> None:
    """RM-1: the reminders move to the new appointment. Whatever is still queued about the
    old one goes, the stop-clinic notice too: the patient has already answered it."""
    if ev.previous_id:
        service.cancel_queued(db, appointment_id=ev.previous_id)
    _queue_bookings(db, [AppointmentBooked.of(db.get_one(Appointment, ev.appointment_id))])


@events.on_commit(AppointmentCancelled)
def on_cancelled(db: Session, ev: AppointmentCancelled) -> None:
    appt = db.get_one(Appointment, ev.appointment_id)
    service.cancel_queued(db, appointment_id=appt.id)
    variables = visit_vars(db, db.get_one(Schedule, appt.schedule_id), appt.start_at)
    variables["reason"] = f"原因：{ev.reason}。" if ev.reason else ""
    service.queue(db, [Draft(appt.patient_id, "cancelled", variables,
                             appt.cancelled_at or utcnow(), f"cancelled:{appt.id}", appt.id,
                             appt.day, hospital_id=appt.hospital_id)])


@events.on_commit(RebookingOffered)
def on_stop_clinic(db: Session, ev: RebookingOffered) -> None:
    """RM-1: a stopped clinic tells each patient, with the slot held for them if any."""
    appt = db.get_one(Appointment, ev.appointment_id)
    offer = db.get_one(RebookingOffer, ev.offer_id)
    service.cancel_queued(db, appointment_id=appt.id)
    variables = visit_vars(db, db.get_one(Schedule, appt.schedule_id), appt.start_at)
    held = db.get(Slot, offer.held_slot_id) if offer.held_slot_id else None
    if held is not None and offer.expires_at is not None:
        # The held slot is kept until the offer ends or the slot starts, whichever is first.
        variables["offer"] = (f"已为您保留{when(held.start_at)}的同级别号源，"
                              f"请在{when(min(offer.expires_at, held.start_at))}前登录确认。")
    else:
        variables["offer"] = offer.note + "。"
    # An offer renewed because its held slot's session stopped too is told afresh: the
    # message is named by the slot it holds.
    service.queue(db, [Draft(appt.patient_id, "stop_clinic", variables,
                             ev.offered_at or offer.created_at,
                             f"stop_clinic:{appt.id}:{offer.held_slot_id or 0}", appt.id,
                             appt.day, hospital_id=appt.hospital_id)])


@events.on_commit(WaitlistOffered)
def on_waitlist_offer(db: Session, ev: WaitlistOffered) -> None:
    entry = db.get_one(WaitlistEntry, ev.entry_id)
    slot = db.get_one(Slot, ev.slot_id)
    schedule = db.get_one(Schedule, slot.schedule_id)
    variables = visit_vars(db, schedule, slot.start_at)
    variables["expires"] = when(entry.offer_expires_at or slot.start_at)
    service.queue(db, [Draft(ev.patient_id, "waitlist_offer", variables,
                             ev.offered_at or utcnow(),
                             f"waitlist_offer:{ev.entry_id}:{ev.slot_id}",
                             event_day=slot.start_at.astimezone(get_settings().tz).date(),
                             hospital_id=schedule.hospital_id)])


@events.on_commit(WaitlistClosed)
def on_waitlist_closed(db: Session, ev: WaitlistClosed) -> None:
    """BK-6: a stopped session tells the patients waiting for it, too."""
    schedule = db.get_one(Schedule, ev.schedule_id)
    service.queue(db, [Draft(ev.patient_id, "waitlist_closed",
                             visit_vars(db, schedule, schedule.start_at),
                             ev.closed_at or utcnow(), f"waitlist_closed:{ev.entry_id}",
                             event_day=schedule.day, hospital_id=schedule.hospital_id)])


@events.on_commit(ScheduleSubstituted)
def on_substituted(db: Session, ev: ScheduleSubstituted) -> None:
    """RM-1: another doctor takes the session; queued messages name them and each patient
    is told (time and place stay)."""
    for appt_id in ev.affected_appointment_ids:
        appt = db.get_one(Appointment, appt_id)
        variables = appointment_vars(db, appt, at=ev.substituted_at or utcnow())
        service.refresh_queued(db, appointment_id=appt.id, variables=variables)
        service.queue(db, [Draft(appt.patient_id, "substituted", variables,
                                 ev.substituted_at or utcnow(),
                                 f"substituted:{appt.id}:{ev.substitute_practitioner_id}",
                                 appt.id, appt.day, hospital_id=appt.hospital_id)])


@events.on_commit(AppointmentCheckedIn)
def on_checked_in(db: Session, ev: AppointmentCheckedIn) -> None:
    """The patient is here: reminders to come are no longer needed."""
    service.cancel_queued(db, appointment_id=ev.appointment_id, templates=service.SCHEDULED)


def _queue_one(db: Session, appt: Appointment, template: str, at: datetime | None,
               key: str = "") -> None:
    """One message about the appointment, keyed by template and appointment (and ``key``,
    for a message that may come again)."""
    variables = visit_vars(db, db.get_one(Schedule, appt.schedule_id), appt.start_at)
    service.queue(db, [Draft(appt.patient_id, template, variables, at or utcnow(),
                             f"{template}:{appt.id}{key}", appt.id, appt.day,
                             hospital_id=appt.hospital_id)])


@events.on_commit(NoShowRecorded)
def on_no_show(db: Session, ev: NoShowRecorded) -> None:
    appt = db.get_one(Appointment, ev.appointment_id)
    # Sent from when it was marked: the no-show's own time is the visit's, hours before.
    _queue_one(db, appt, "no_show", ev.marked_at)


@events.on_commit(PatientCalled)
def on_called(db: Session, ev: PatientCalled) -> None:
    """RM-1: "you are next" on the day; a same-day event, so quiet hours do not hold it."""
    appt = db.get_one(Appointment, ev.appointment_id)
    # A patient passed over (过号) and called again is told again.
    _queue_one(db, appt, "your_turn", appt.called_at,
               f":{appt.passed_over_at.isoformat()}" if appt.passed_over_at else "")


@events.on_commit(PatientsMerged)
def on_merged(db: Session, ev: PatientsMerged) -> None:
    """ID-3: the surviving record gets the duplicate's messages, sent and still to send."""
    service.move_messages(db, source=ev.source_patient_id, target=ev.target_patient_id)


@events.on_commit(PatientsUnmerged)
def on_unmerged(db: Session, ev: PatientsUnmerged) -> None:
    """ID-3: messages about the appointments an unmerge returns go back with them."""
    moved = list(db.scalars(select(MergeMove.row_id).where(
        MergeMove.merge_id == ev.merge_id, MergeMove.kind == "appointment")))
    service.move_messages(db, source=ev.target_patient_id, target=ev.source_patient_id,
                          appointment_ids=moved)
