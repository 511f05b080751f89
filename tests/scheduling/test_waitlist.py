"""候补 (BK-6, BK-8): the waitlist is no back door around the no-show restriction or the
per-patient limits that a direct booking meets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity.models import AuditEvent, Patient
from onetrip.identity.service import Principal
from onetrip.notify.models import Notification
from onetrip.notify.templates import render
from onetrip.scheduling import booking, penalties, service, stopclinic, sweep, waitlist
from onetrip.scheduling.errors import (
    LimitReached,
    OfferUnavailable,
    PatientRestricted,
    PoolClosed,
    ScheduleFull,
    SlotTaken,
    WaitlistClosed,
)
from onetrip.scheduling.models import Appointment, Slot, WaitlistEntry
from onetrip.scheduling.rules import Channel, PenaltyEvent, SessionOfDay
from tests.scheduling.conftest import DAY, Clinic, local

ONLINE_ONLY = local(DAY - timedelta(days=6), 9)  # referral slots have returned to the online pool


def full_session(db: Session, clinic: Clinic) -> list[Appointment]:
    """Book every slot the window can reach; the online ones first in the list."""
    taken = []
    while True:
        p, _pp = clinic.patient(db)
        try:
            taken.append(clinic.book(db, p.id, now=ONLINE_ONLY))
        except (ScheduleFull, PoolClosed):
            return sorted(taken, key=lambda a: a.pool != "online")


def noshow(db: Session, clinic: Clinic, patient_id: int) -> None:
    penalties.record(db, patient_id=patient_id, hospital_id=clinic.hospital.id,
                     kind=PenaltyEvent.noshow, at=ONLINE_ONLY - timedelta(days=2),
                     source="exam", source_id=patient_id)


def join_online(db: Session, clinic: Clinic, patient: Patient, principal: Principal, *,
                now: datetime = ONLINE_ONLY) -> WaitlistEntry:
    """The patient joins the clinic's session's waitlist from the app."""
    return waitlist.join(db, principal=principal, patient_id=patient.id,
                         schedule_id=clinic.schedule.id, channel=Channel.app, now=now)


def free_one(db: Session, clinic: Clinic, taken: list[Appointment]) -> None:
    booking.cancel(db, principal=clinic.window, appointment_id=taken[0].id,
                   now=ONLINE_ONLY + timedelta(minutes=2))


def test_bk6_a_restricted_patient_cannot_join_the_waitlist_online(
        db: Session, clinic: Clinic) -> None:
    full_session(db, clinic)
    p, pp = clinic.patient(db)
    noshow(db, clinic, p.id)
    with pytest.raises(PatientRestricted) as err:
        join_online(db, clinic, p, pp)
    assert err.value.detail["until"]


def test_bk6_a_patient_restricted_after_joining_cannot_accept_the_offer(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    p, pp = clinic.patient(db)
    entry = join_online(db, clinic, p, pp)
    free_one(db, clinic, taken)
    db.refresh(entry)
    assert entry.status == "offered"
    noshow(db, clinic, p.id)  # restricted while the offer runs
    with pytest.raises(PatientRestricted):
        waitlist.accept(db, principal=pp, entry_id=entry.id,
                        now=ONLINE_ONLY + timedelta(minutes=3))
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == p.id)) == 0


def test_bk6_a_freed_slot_passes_over_a_patient_restricted_since_joining(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    (first, first_p), (second, second_p) = clinic.patient(db), clinic.patient(db)
    entries = [join_online(db, clinic, p, pp)
               for p, pp in ((first, first_p), (second, second_p))]
    noshow(db, clinic, first.id)
    free_one(db, clinic, taken)
    for e in entries:
        db.refresh(e)
    # The slot is not held for 15 minutes for someone who may not take it: the next
    # patient gets it, and the restricted one keeps their place should the restriction end.
    assert [e.status for e in entries] == ["waiting", "offered"]
    assert entries[1].offered_slot_id == taken[0].slot_id


def test_id3_a_merged_record_waits_as_its_master(db: Session, clinic: Clinic) -> None:
    """The waitlist resolves a merged duplicate as booking does: the entry, the offer and the
    per-patient limits are the surviving record's."""
    taken = full_session(db, clinic)
    master, _ = clinic.patient(db)
    duplicate, _ = clinic.patient(db)
    duplicate.status, duplicate.merged_into_id = "merged", master.id
    afternoon = clinic.session(db, day=DAY, session=SessionOfDay.pm)
    clinic.book(db, master.id, now=ONLINE_ONLY, schedule=afternoon)
    entry = waitlist.join(db, principal=clinic.window, patient_id=duplicate.id,
                          schedule_id=clinic.schedule.id, channel=Channel.window,
                          now=ONLINE_ONLY)
    assert entry.patient_id == master.id
    free_one(db, clinic, taken)
    db.refresh(entry)
    with pytest.raises(LimitReached):  # the master already has this department that day
        waitlist.accept(db, principal=clinic.window, entry_id=entry.id,
                        now=ONLINE_ONLY + timedelta(minutes=3))


def test_bk8_accepting_an_offer_keeps_one_appointment_per_department_and_day(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    p, pp = clinic.patient(db)
    entry = join_online(db, clinic, p, pp)
    afternoon = clinic.session(db, day=DAY, session=SessionOfDay.pm)
    clinic.book(db, p.id, now=ONLINE_ONLY + timedelta(minutes=1), schedule=afternoon)
    free_one(db, clinic, taken)
    db.refresh(entry)
    assert entry.status == "offered"
    with pytest.raises(LimitReached):
        waitlist.accept(db, principal=pp, entry_id=entry.id,
                        now=ONLINE_ONLY + timedelta(minutes=3))
    # Nothing was written: the offered slot is still held for the offer, not booked.
    slot = db.get_one(Slot, taken[0].slot_id)
    db.refresh(slot)
    assert slot.status == "held"


def test_bk6_stopping_a_session_ends_its_waitlist_with_a_notice(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    entries = []
    for _ in range(2):
        p, pp = clinic.patient(db)
        entries.append(join_online(db, clinic, p, pp))
    free_one(db, clinic, taken)  # the first waiting patient is offered the freed slot
    stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                           reason="专家外出会诊", now=ONLINE_ONLY + timedelta(minutes=5))
    db.commit()
    for entry in entries:
        db.refresh(entry)
        # Ended by the hospital, not left by the patient: the two read apart.
        assert entry.status == "closed"
        assert waitlist.position(db, entry) is None
    notices = db.scalars(select(Notification).where(
        Notification.patient_id.in_([e.patient_id for e in entries]),
        Notification.template == "waitlist_closed")).all()
    assert sorted(n.patient_id for n in notices) == sorted(e.patient_id for e in entries)
    assert "停诊" in render("waitlist_closed", notices[0].variables)


def a_hold_and_a_patient_waiting(db: Session, clinic: Clinic,
                                 ) -> tuple[Appointment, WaitlistEntry]:
    """A full session whose last slot is held from the app, then a patient joins its
    waitlist: the hold (5 minutes) and the waiting entry."""
    taken = full_session(db, clinic)
    booking.cancel(db, principal=clinic.window, appointment_id=taken[0].id, now=ONLINE_ONLY)
    h, ph = clinic.patient(db)
    held = booking.book(db, principal=ph, patient_id=h.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=ONLINE_ONLY, hold=True)
    p, pp = clinic.patient(db)
    return held, join_online(db, clinic, p, pp, now=ONLINE_ONLY + timedelta(minutes=1))


def test_bk6_a_slot_freed_by_a_run_out_hold_goes_to_the_waitlist_first(
        db: Session, clinic: Clinic) -> None:
    held, entry = a_hold_and_a_patient_waiting(db, clinic)
    report = sweep.sweep(db, now=ONLINE_ONLY + timedelta(minutes=10))
    assert report.holds_expired == 1
    db.refresh(entry)
    assert entry.status == "offered" and entry.offered_slot_id == held.slot_id
    assert sweep.sweep(db, now=ONLINE_ONLY + timedelta(minutes=10)).holds_expired == 0


@pytest.mark.parametrize(("by", "refusal"), [("schedule", PoolClosed), ("slot", SlotTaken)])
def test_bk6_a_run_out_hold_is_not_booked_past_the_waitlist_before_the_sweeper_offers_it(
        db: Session, clinic: Clinic, by: str, refusal: type[Exception]) -> None:
    """Between a hold running out and the sweeper's next pass, a direct booking (of the
    session or of that very slot) does not take the slot from the patient waiting for it.
    (All the session has left for the app is that slot: its window slots open on the day.)"""
    held, entry = a_hold_and_a_patient_waiting(db, clinic)
    later = ONLINE_ONLY + timedelta(minutes=10)
    q, pq = clinic.patient(db)
    target = {"schedule_id": clinic.schedule.id} if by == "schedule" else \
        {"slot_id": held.slot_id}
    with pytest.raises(refusal):
        booking.book(db, principal=pq, patient_id=q.id, channel=Channel.app, now=later,
                     **target)  # type: ignore[arg-type]
    # Nor is it shown as free: the session stays full, and the next patient may join its
    # waitlist instead of being sent to book a slot they could not have.
    assert service.free_slots(db, schedule=clinic.schedule, channel=Channel.app,
                              now=later) == []
    assert join_online(db, clinic, q, pq, now=later).status == "waiting"
    assert sweep.sweep(db, now=later).holds_expired == 1
    db.refresh(entry)
    assert entry.status == "offered" and entry.offered_slot_id == held.slot_id


def test_bk6_a_slot_a_declined_rebooking_offer_frees_goes_to_the_waitlist_first(
        db: Session, clinic: Clinic) -> None:
    stopped = clinic.session(db, day=DAY, session=SessionOfDay.evening)
    p, pp = clinic.patient(db)
    clinic.book(db, p.id, now=ONLINE_ONLY, schedule=stopped)
    taken = full_session(db, clinic)
    booking.cancel(db, principal=clinic.window, appointment_id=taken[0].id, now=ONLINE_ONLY)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=stopped.id,
                                      reason="停诊", now=ONLINE_ONLY).offers
    assert offer.held_slot_id == taken[0].slot_id
    w, pw = clinic.patient(db)
    entry = join_online(db, clinic, w, pw, now=ONLINE_ONLY + timedelta(minutes=1))
    stopclinic.decline_offer(db, principal=pp, offer_id=offer.id,
                             now=ONLINE_ONLY + timedelta(minutes=2))
    db.refresh(entry)
    assert entry.status == "offered" and entry.offered_slot_id == offer.held_slot_id



def test_accepting_a_waitlist_offer_is_audited_as_a_booking(
        db: Session, clinic: Clinic) -> None:
    """Every appointment made leaves an ``appointment.book`` audit row, as a direct booking
    does, whichever way it came."""
    taken = full_session(db, clinic)
    w, pw = clinic.patient(db)
    entry = join_online(db, clinic, w, pw)
    free_one(db, clinic, taken)
    waitlist.accept(db, principal=pw, entry_id=entry.id, now=ONLINE_ONLY + timedelta(minutes=3))
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.patient_id == w.id, AuditEvent.action == "appointment.book")) == 1


def test_bk6_a_patient_leaves_the_waitlist_and_those_behind_move_up(
        db: Session, clinic: Clinic) -> None:
    full_session(db, clinic)
    waiting = [clinic.patient(db) for _ in range(3)]
    entries = [join_online(db, clinic, p, pp, now=ONLINE_ONLY + timedelta(minutes=i))
               for i, (p, pp) in enumerate(waiting)]
    assert [waitlist.position(db, e) for e in entries] == [0, 1, 2]
    left = waitlist.leave(db, principal=waiting[0][1], entry_id=entries[0].id,
                          now=ONLINE_ONLY + timedelta(minutes=5))
    assert left.status == "cancelled" and waitlist.position(db, left) is None
    assert [waitlist.position(db, e) for e in entries[1:]] == [0, 1]
    with pytest.raises(WaitlistClosed):  # left already: nothing more to leave
        waitlist.leave(db, principal=waiting[0][1], entry_id=entries[0].id,
                       now=ONLINE_ONLY + timedelta(minutes=6))


def test_bk6_leaving_with_an_offer_passes_the_slot_to_the_next_in_line(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    (p, pp), (q, pq) = clinic.patient(db), clinic.patient(db)
    first = join_online(db, clinic, p, pp)
    second = join_online(db, clinic, q, pq, now=ONLINE_ONLY + timedelta(minutes=1))
    free_one(db, clinic, taken)
    db.refresh(first)
    assert first.status == "offered"
    slot_id = first.offered_slot_id
    waitlist.leave(db, principal=pp, entry_id=first.id, now=ONLINE_ONLY + timedelta(minutes=3))
    db.refresh(second)
    assert second.status == "offered" and second.offered_slot_id == slot_id
    with pytest.raises(OfferUnavailable):
        waitlist.accept(db, principal=pp, entry_id=first.id,
                        now=ONLINE_ONLY + timedelta(minutes=4))


def test_only_the_patient_or_staff_can_take_someone_off_the_waitlist(
        db: Session, clinic: Clinic) -> None:
    full_session(db, clinic)
    (p, pp), (_q, pq) = clinic.patient(db), clinic.patient(db)
    entry = join_online(db, clinic, p, pp)
    with pytest.raises(PermissionDenied):
        waitlist.leave(db, principal=pq, entry_id=entry.id, now=ONLINE_ONLY)
    db.refresh(entry)
    assert entry.status == "waiting"
    assert waitlist.leave(db, principal=clinic.window, entry_id=entry.id,
                          now=ONLINE_ONLY).status == "cancelled"
    with pytest.raises(WaitlistClosed):
        waitlist.leave(db, principal=pp, entry_id=entry.id + 1000, now=ONLINE_ONLY)
