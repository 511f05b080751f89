"""停诊 (BK-6, BK-8): taking a rebooking offer meets the per-patient limits like any booking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import InvalidInput
from onetrip.identity.models import AuditEvent, Patient
from onetrip.identity.service import Principal
from onetrip.scheduling import booking, service, stopclinic
from onetrip.scheduling.errors import LimitReached
from onetrip.scheduling.models import Appointment, RebookingOffer, Slot
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import make_department, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic


def booked_then_stopped(db: Session, clinic: Clinic,
                        ) -> tuple[Patient, Principal, Appointment, RebookingOffer]:
    """A patient books the clinic's session from the app, then the session stops: their
    appointment and the rebooking offer that holds them a slot."""
    p, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window,
                                      schedule_id=clinic.schedule.id, reason="停诊",
                                      now=OPEN).offers
    assert offer.held_slot_id is not None
    return p, pp, appt, offer


def test_bk8_an_offer_for_a_day_already_booked_in_the_department_is_a_clean_409(
        db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level="expert")
    later = DAY + timedelta(days=2)
    clinic.session(db, day=later, doctor=colleague)
    afternoon = clinic.session(db, day=later, doctor=colleague, session=SessionOfDay.pm)
    p, pp, appt, offer = booked_then_stopped(db, clinic)
    # Meanwhile the patient booked the same department's afternoon of the offered day.
    booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                 schedule_id=afternoon.id, now=OPEN + timedelta(minutes=1))
    with pytest.raises(LimitReached):
        stopclinic.accept_offer(db, principal=pp, offer_id=offer.id,
                                slot_id=offer.held_slot_id, now=OPEN + timedelta(minutes=2))
    db.refresh(offer)
    held = db.get_one(Slot, offer.held_slot_id)
    db.refresh(held)
    assert offer.status == "open" and held.status == "held" and appt.id == offer.appointment_id


def test_bk8_a_rebooking_offer_replaces_the_cancelled_appointment_past_the_total_limit(
        db: Session, clinic: Clinic) -> None:
    """The hospital cancelled the appointment: taking its replacement is not a new booking,
    so a patient who booked up to ``max_active_appointments`` meanwhile still gets it."""
    pools = service.policy_for(db, clinic.hospital.id)[0].model_dump(mode="json")
    service.set_policy(db, hospital=clinic.hospital, pools={
        **pools, "max_active_appointments": 1})
    elsewhere = make_department(db, clinic.hospital, name="消化内科")
    other = service.create_schedule(
        db, hospital=clinic.hospital, department=elsewhere, day=DAY, session=SessionOfDay.pm,
        practitioner=make_practitioner(db, clinic.hospital, elsewhere), capacity=5,
        slot_minutes=6, now=CREATED)
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=2), doctor=colleague)
    p, pp, _appt, offer = booked_then_stopped(db, clinic)
    booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                 schedule_id=other.id, now=OPEN + timedelta(minutes=1))
    with pytest.raises(LimitReached):  # a new booking is over the limit ...
        booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                     schedule_id=offer_schedule(db, offer.held_slot_id),
                     now=OPEN + timedelta(minutes=2))
    # ... the replacement is not.
    appt = stopclinic.accept_offer(db, principal=pp, offer_id=offer.id,
                                   slot_id=offer.held_slot_id, now=OPEN + timedelta(minutes=2))
    assert appt.status == "booked" and appt.slot_id == offer.held_slot_id


def offer_schedule(db: Session, slot_id: int) -> int:
    return db.get_one(Slot, slot_id).schedule_id


def test_bk6_a_substitute_already_in_clinic_at_that_time_is_refused(
        db: Session, clinic: Clinic) -> None:
    busy = make_practitioner(db, clinic.hospital, clinic.department, service_level="expert")
    clinic.session(db, day=DAY, doctor=busy)  # the same morning
    with pytest.raises(InvalidInput, match="同一时段"):
        stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                              practitioner_id=busy.id, reason="外出会诊", now=OPEN)
    db.refresh(clinic.schedule)
    assert clinic.schedule.status == "open"
    # Free that morning: the afternoon clinic does not stand in the way.
    free = make_practitioner(db, clinic.hospital, clinic.department, service_level="expert")
    clinic.session(db, day=DAY, doctor=free, session=SessionOfDay.pm)
    done = stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                                 practitioner_id=free.id, reason="外出会诊", now=OPEN)
    assert done.status == "substituted"


def test_accepting_a_rebooking_offer_is_audited_as_a_booking(
        db: Session, clinic: Clinic) -> None:
    """The new appointment leaves an ``appointment.book`` audit row, as a direct booking
    does."""
    clinic.session(db, day=DAY + timedelta(days=2))
    p, pp = clinic.patient(db)
    booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                 schedule_id=clinic.schedule.id, now=OPEN)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window,
                                      schedule_id=clinic.schedule.id, reason="停诊",
                                      now=OPEN).offers

    def booked() -> int:
        return db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.patient_id == p.id, AuditEvent.action == "appointment.book")) or 0

    assert booked() == 1  # the first booking
    stopclinic.accept_offer(db, principal=pp, offer_id=offer.id, slot_id=offer.slot_ids[0],
                            now=OPEN + timedelta(minutes=2))
    assert booked() == 2
