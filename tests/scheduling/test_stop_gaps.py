"""停诊/替诊 (BK-6): stopping a session leaves every patient with an offer or a notice, whatever
their appointment's state, however many they are and whatever became of an earlier offer."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.notify.models import Notification
from onetrip.scheduling import booking, queue, stopclinic, sweep
from onetrip.scheduling.errors import OfferUnavailable, ScheduleOver
from onetrip.scheduling.models import Appointment, RebookingOffer, Schedule, Slot
from onetrip.scheduling.rules import Channel
from tests.factories import make_practitioner
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def colleague_session(db: Session, clinic: Clinic, *, day: date = DAY + timedelta(days=1),
                      capacity: int = 10) -> Schedule:
    """An equivalent session (same department and service level), another doctor's."""
    doctor = make_practitioner(db, clinic.hospital, clinic.department, service_level="expert")
    return clinic.session(db, day=day, doctor=doctor, capacity=capacity)


def booked(db: Session, clinic: Clinic, n: int, *, schedule: Schedule | None = None,
           now: datetime = OPEN) -> list[Appointment]:
    """``n`` patients booked at the window into the session (the clinic's own by default)."""
    return [clinic.book(db, clinic.patient(db)[0].id, now=now, schedule=schedule)
            for _ in range(n)]


def stop(db: Session, clinic: Clinic, schedule: Schedule, now: datetime,
         ) -> stopclinic.StopResult:
    return stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=schedule.id,
                                  reason="医生急病", now=now)


def messages(db: Session, appointment_id: int) -> dict[str, Notification]:
    """The messages about an appointment, once the change is committed (the notify
    subscribers queue them as it commits)."""
    db.commit()
    rows = db.scalars(select(Notification).where(Notification.appointment_id == appointment_id)
                      .execution_options(populate_existing=True))
    return {n.template: n for n in rows}


def accept(db: Session, clinic: Clinic, offer: RebookingOffer, slot_id: int | None,
           now: datetime) -> Appointment:
    assert slot_id is not None
    return stopclinic.accept_offer(db, principal=clinic.patient_principal(offer.patient_id),
                                   offer_id=offer.id, slot_id=slot_id, now=now)


def session_of(db: Session, slot_id: int | None) -> int:
    assert slot_id is not None
    return db.get_one(Slot, slot_id).schedule_id


# --- patients already checked in --------------------------------------------------------


def test_bk6_a_checked_in_patient_gets_an_offer_when_the_session_stops(
        db: Session, clinic: Clinic) -> None:
    colleague_session(db, clinic)
    here, coming = booked(db, clinic, 2)
    queue.check_in(db, principal=clinic.window, appointment_id=here.id,
                   patient_id=here.patient_id, now=local(DAY, 7, 55))
    result = stop(db, clinic, clinic.schedule, local(DAY, 8, 10))
    offers = {o.appointment_id: o for o in result.offers}
    assert set(offers) == {here.id, coming.id}
    assert queue.queue_for(db, schedule_id=clinic.schedule.id) == []  # nobody waits in vain
    assert messages(db, here.id)["stop_clinic"].status == "queued"
    new = accept(db, clinic, offers[here.id], offers[here.id].held_slot_id, local(DAY, 8, 15))
    assert new.status == "booked" and new.rebooked_from_id == here.id


def test_bk6_a_checked_in_patient_is_told_of_the_substitute(
        db: Session, clinic: Clinic) -> None:
    appts = booked(db, clinic, 2)
    queue.check_in(db, principal=clinic.window, appointment_id=appts[0].id,
                   patient_id=appts[0].patient_id, now=local(DAY, 7, 50))
    other = make_practitioner(db, clinic.hospital, clinic.department, service_level="expert")
    stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                          practitioner_id=other.id, reason="原医生急病", now=local(DAY, 8, 10))
    for appt in appts:
        assert messages(db, appt.id)["substituted"].status == "queued"


# --- an offer into a session stopped in its turn ----------------------------------------


def stopped_twice(db: Session, clinic: Clinic, *, elsewhere: bool,
                  ) -> tuple[RebookingOffer, Schedule, Schedule | None, datetime, list[int]]:
    """A patient of the clinic's session is offered (and held) a slot of session Y; then Y is
    stopped too. Returns the offer, Y, the other equivalent session if any, when Y stopped
    and the offers Y's stop answered with."""
    y = colleague_session(db, clinic, capacity=5)
    z = colleague_session(db, clinic, day=DAY + timedelta(days=3), capacity=5) \
        if elsewhere else None
    booked(db, clinic, 1)
    first = local(DAY, 7, 20)
    (offer,) = stop(db, clinic, clinic.schedule, first).offers
    assert session_of(db, offer.held_slot_id) == y.id
    db.commit()  # the first notice is queued
    second = first + timedelta(minutes=30)
    result = stop(db, clinic, y, second)
    db.refresh(offer)
    return offer, y, z, second, [o.id for o in result.offers]


def test_bk6_an_offer_held_in_a_session_stopped_later_is_renewed(
        db: Session, clinic: Clinic) -> None:
    offer, _y, z, when, answered = stopped_twice(db, clinic, elsewhere=True)
    assert z is not None and offer.status == "open"
    assert {session_of(db, s) for s in offer.slot_ids} == {z.id}
    assert offer.expires_at is not None and offer.expires_at > when
    assert offer.id in answered  # Y's stop lists them with its own patients
    new = accept(db, clinic, offer, offer.held_slot_id, when + timedelta(minutes=1))
    assert new.status == "booked" and new.schedule_id == z.id


def test_bk6_an_offer_held_in_a_session_stopped_later_turns_into_a_refund_notice(
        db: Session, clinic: Clinic) -> None:
    offer, y, _z, when, _answered = stopped_twice(db, clinic, elsewhere=False)
    assert offer.slot_ids == [] and offer.held_slot_id is None
    assert offer.refund_flagged and "退还" in offer.note
    with pytest.raises(OfferUnavailable):  # Y's slot is no longer among the offered
        accept(db, clinic, offer, db.scalars(select(Slot.id).where(
            Slot.schedule_id == y.id)).first(), when + timedelta(minutes=1))


def test_bk6_a_patient_whose_offer_is_renewed_is_told(db: Session, clinic: Clinic) -> None:
    offer, _y, _z, when, _answered = stopped_twice(db, clinic, elsewhere=True)
    notice = messages(db, offer.appointment_id)["stop_clinic"]
    held = db.get_one(Slot, offer.held_slot_id)
    # Sent from the renewal (quiet hours weighed then), not from the first offer's time.
    assert notice.status == "queued" and notice.send_at == when
    assert f"{held.start_at.astimezone(local(DAY, 0).tzinfo).day}日" in notice.variables["offer"]


# --- the offer's own expiry ---------------------------------------------------------------


def test_bk6_the_alternatives_stay_open_once_the_nearest_option_has_started(
        db: Session, clinic: Clinic) -> None:
    today = colleague_session(db, clinic, day=DAY, capacity=20)
    tomorrow = colleague_session(db, clinic, capacity=20)
    booked(db, clinic, 1)
    stopped = local(DAY, 8, 10)
    (offer,) = stop(db, clinic, clinic.schedule, stopped).offers
    nearest, *later = offer.slot_ids
    assert session_of(db, nearest) == today.id and later
    assert db.get_one(Slot, nearest).start_at < stopped + timedelta(minutes=5)
    sweep.sweep(db, now=stopped + timedelta(minutes=5))
    with pytest.raises(OfferUnavailable):  # that option has started
        accept(db, clinic, offer, nearest, stopped + timedelta(minutes=6))
    new = accept(db, clinic, offer, later[-1], stopped + timedelta(minutes=6))
    assert new.status == "booked" and new.schedule_id == tomorrow.id


# --- many patients ------------------------------------------------------------------------


def test_bk6_a_slot_shown_to_another_patient_is_offered_rather_than_a_refund(
        db: Session, clinic: Clinic) -> None:
    for _ in range(3):
        colleague_session(db, clinic, capacity=2)  # six equivalent slots in all
    booked(db, clinic, 4)
    result = stop(db, clinic, clinic.schedule, OPEN + timedelta(hours=1))
    assert len(result.offers) == 4
    assert all(o.held_slot_id is not None for o in result.offers)


def test_bk6_a_large_stop_offers_each_patient_slots_offered_to_nobody_else(
        db: Session, clinic: Clinic) -> None:
    """130 patients, 450 equivalent slots: room for three options each, none shared."""
    for _ in range(3):
        colleague_session(db, clinic, capacity=150)
    big = colleague_session(db, clinic, day=DAY, capacity=130)
    booked(db, clinic, 130, schedule=big, now=local(DAY, 7, 5))
    result = stop(db, clinic, big, local(DAY, 7, 30))
    assert len(result.offers) == 130
    assert all(o.held_slot_id is not None and len(o.slot_ids) == 3 for o in result.offers)
    shown = [s for o in result.offers for s in o.slot_ids]
    assert len(set(shown)) == len(shown)


# --- a hold that ran out but was not yet swept --------------------------------------------


def lapsed_hold(db: Session, clinic: Clinic, schedule: Schedule) -> Appointment:
    """Someone held the session's one slot at the window and walked away; the hold has run
    out by the time of the stop, and the sweeper has not passed."""
    q, _ = clinic.patient(db)
    return booking.book(db, principal=clinic.window, patient_id=q.id, channel=Channel.window,
                        schedule_id=schedule.id, now=OPEN, hold=True)


def test_bk6_an_offer_may_hold_a_slot_whose_hold_ran_out(db: Session, clinic: Clinic) -> None:
    y = colleague_session(db, clinic, capacity=1)
    stale = lapsed_hold(db, clinic, y)
    booked(db, clinic, 1)
    stopped = OPEN + timedelta(hours=1)
    (offer,) = stop(db, clinic, clinic.schedule, stopped).offers
    assert offer.held_slot_id == stale.slot_id
    new = accept(db, clinic, offer, offer.held_slot_id, stopped + timedelta(minutes=1))
    assert new.status == "booked" and new.slot_id == stale.slot_id


def test_bk6_an_alternative_whose_hold_ran_out_can_be_accepted(
        db: Session, clinic: Clinic) -> None:
    colleague_session(db, clinic, capacity=1)
    later = colleague_session(db, clinic, day=DAY + timedelta(days=2), capacity=1)
    stale = lapsed_hold(db, clinic, later)
    booked(db, clinic, 1)
    stopped = OPEN + timedelta(hours=1)
    (offer,) = stop(db, clinic, clinic.schedule, stopped).offers
    assert offer.slot_ids[1:] == [stale.slot_id]
    new = accept(db, clinic, offer, stale.slot_id, stopped + timedelta(minutes=1))
    assert new.status == "booked" and new.slot_id == stale.slot_id


# --- a session already over -----------------------------------------------------------------


def test_bk6_a_session_over_can_be_neither_stopped_nor_handed_on(
        db: Session, clinic: Clinic) -> None:
    """Stopping a session after it ran would turn its no-shows into refunds with a new
    offer, and its patients seen into a session never held."""
    seen, absent = booked(db, clinic, 2)
    after = clinic.schedule.end_at + timedelta(minutes=10)
    queue.check_in(db, principal=clinic.window, appointment_id=seen.id,
                   now=seen.start_at - timedelta(minutes=5), patient_id=seen.patient_id)
    with pytest.raises(ScheduleOver):
        stop(db, clinic, clinic.schedule, after)
    doctor = make_practitioner(db, clinic.hospital, clinic.department)
    with pytest.raises(ScheduleOver):
        stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                              practitioner_id=doctor.id, reason="替诊", now=after)
    db.refresh(clinic.schedule)
    db.refresh(absent)
    assert clinic.schedule.status == "open" and absent.status == "booked"
    assert db.scalars(select(RebookingOffer)).all() == []


def test_bk6_the_patient_with_the_doctor_when_the_session_stops_is_seen_not_refunded(
        db: Session, clinic: Clinic) -> None:
    colleague_session(db, clinic)
    inside, waiting = booked(db, clinic, 2)
    for appt in (inside, waiting):
        queue.check_in(db, principal=clinic.window, appointment_id=appt.id,
                       now=local(DAY, 7, 50), patient_id=appt.patient_id)
    called = queue.call_next(db, principal=clinic.doctor_principal,
                             schedule_id=clinic.schedule.id, now=local(DAY, 8))
    assert called is not None and called.id == inside.id
    result = stop(db, clinic, clinic.schedule, local(DAY, 8, 5))
    db.refresh(inside)
    db.refresh(waiting)
    assert inside.status == "fulfilled" and waiting.status == "cancelled"
    assert [o.appointment_id for o in result.offers] == [waiting.id]
