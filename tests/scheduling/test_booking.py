"""Booking services against the database, with a fake clock (BK-1..BK-8)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.scheduling import booking, service
from onetrip.scheduling.errors import (
    CancelDeadlinePassed,
    ChannelNotAllowed,
    HoldExpired,
    LimitReached,
    PatientRestricted,
    PolicyRejected,
    PoolClosed,
    ScheduleFull,
    SlotInPast,
    SlotTaken,
)
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Channel, Pool, SessionOfDay
from tests.factories import make_department, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic, local


def slots_by_pool(clinic: Clinic) -> dict[str, list[Slot]]:
    out: dict[str, list[Slot]] = {}
    for s in clinic.schedule.slots:
        out.setdefault(s.pool, []).append(s)
    return out


def test_bk3_slots_are_minute_precise_and_pools_meet_the_floors(clinic: Clinic) -> None:
    starts = [s.start_at for s in clinic.schedule.slots]
    assert starts[0] == local(DAY, 8) and starts[1] == local(DAY, 8, 6)
    pools = Counter(s.pool for s in clinic.schedule.slots)
    assert pools["online"] + pools["referral"] >= 8 and pools["referral"] >= 4


def test_book_earliest_online_slot_for_oneself(db: Session, clinic: Clinic) -> None:
    patient, me = clinic.patient(db)
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    first_online = min(s.start_at for s in slots_by_pool(clinic)["online"])
    assert appt.status == "booked" and appt.start_at == first_online and appt.pool == "online"
    slot = db.get_one(Slot, appt.slot_id)
    db.refresh(slot)
    assert slot.status == "booked"


def test_bk4_referral_slots_need_the_referral_channel_until_they_return(
        db: Session, clinic: Clinic) -> None:
    patient, me = clinic.patient(db)
    referral = slots_by_pool(clinic)["referral"][0]
    with pytest.raises(PoolClosed):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                     slot_id=referral.id, now=local(DAY - timedelta(days=9), 9))
    # Three days after release (10 days ahead) the slot is back in the online pool.
    returned = local(DAY - timedelta(days=7), 7)
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        slot_id=referral.id, now=returned)
    assert appt.pool == Pool.online


def test_bk4_primary_care_doctor_refers_into_the_alliance(db: Session, clinic: Clinic) -> None:
    from onetrip.identity.rules import Role
    from onetrip.identity.service import Principal
    from onetrip.org.models import MedicalAlliance
    from tests.factories import make_hospital

    alliance = MedicalAlliance(region_id=clinic.hospital.region_id, code="a-test", name="医联体")
    db.add(alliance)
    db.flush()
    clinic.hospital.alliance_id = alliance.id
    community = make_hospital(db, region=clinic.hospital.region, level="primary",
                              kind="primary_care", alliance_id=alliance.id)
    gp = Principal(role=Role.doctor, hospital_id=community.id, label="全科")
    patient, _ = clinic.patient(db)
    when = local(DAY - timedelta(days=9), 9)  # referral pool open, online not yet
    appt = booking.book(db, principal=gp, patient_id=patient.id, channel=Channel.referral,
                        schedule_id=clinic.schedule.id, now=when)
    assert appt.pool == "referral"
    outsider = make_hospital(db, region=clinic.hospital.region, level="primary",
                             kind="primary_care")
    other, _ = clinic.patient(db)
    with pytest.raises(ChannelNotAllowed):
        booking.book(db, principal=Principal(role=Role.doctor, hospital_id=outsider.id),
                     patient_id=other.id, channel=Channel.referral,
                     schedule_id=clinic.schedule.id, now=when)


def test_pools_are_closed_before_release_and_overnight(db: Session, clinic: Clinic) -> None:
    patient, me = clinic.patient(db)
    with pytest.raises(PoolClosed):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.web,
                     schedule_id=clinic.schedule.id, now=local(DAY - timedelta(days=7), 6, 59))
    with pytest.raises(PoolClosed, match="截止"):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.web,
                     schedule_id=clinic.schedule.id, now=local(DAY - timedelta(days=1), 21))


def test_window_books_window_pool_on_the_day_and_priority_for_bk5(
        db: Session, clinic: Clinic) -> None:
    patient, _ = clinic.patient(db)
    priority = slots_by_pool(clinic).get("priority") or []
    target = priority[0] if priority else slots_by_pool(clinic)["window"][0]
    appt = booking.book(db, principal=clinic.window, patient_id=patient.id,
                        channel=Channel.window, slot_id=target.id, now=local(DAY, 7, 30))
    assert appt.channel == "window"


def test_patients_cannot_use_staff_channels_or_book_for_strangers(
        db: Session, clinic: Clinic) -> None:
    patient, me = clinic.patient(db)
    stranger, _ = clinic.patient(db)
    with pytest.raises(ChannelNotAllowed):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.window,
                     schedule_id=clinic.schedule.id, now=OPEN)
    with pytest.raises(PermissionDenied):
        booking.book(db, principal=me, patient_id=stranger.id, channel=Channel.app,
                     schedule_id=clinic.schedule.id, now=OPEN)


def test_slot_taken_and_schedule_full_and_past(db: Session, clinic: Clinic) -> None:
    online = [s for s in clinic.schedule.slots if s.pool == "online"]
    a, pa = clinic.patient(db)
    b, pb = clinic.patient(db)
    booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app, slot_id=online[0].id,
                 now=OPEN)
    with pytest.raises(SlotTaken):
        booking.book(db, principal=pb, patient_id=b.id, channel=Channel.app,
                     slot_id=online[0].id, now=OPEN)
    with pytest.raises(SlotInPast):
        booking.book(db, principal=pb, patient_id=b.id, channel=Channel.app,
                     slot_id=online[1].id, now=local(DAY, 12))
    # Fill every online-reachable slot, then the next patient finds the schedule full.
    returned = local(DAY - timedelta(days=6), 9)
    while True:
        p, pp = clinic.patient(db)
        try:
            booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                         schedule_id=clinic.schedule.id, now=returned)
        except (PoolClosed, ScheduleFull) as exc:
            last = exc
            break
    assert isinstance(last, PoolClosed)  # window/priority slots remain for on-site channels
    booked = db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.schedule_id == clinic.schedule.id))
    assert booked == sum(1 for s in clinic.schedule.slots if s.pool in ("online", "referral"))


def test_a_session_whose_slots_have_all_started_is_past_not_full(
        db: Session, clinic: Clinic) -> None:
    """A session booked by its id after its last slot began: the patient is told it is
    over (`slot_in_past`), not that its slots ran out, and nothing is written."""
    p, _pp = clinic.patient(db)
    last_start = max(s.start_at for s in clinic.schedule.slots)
    with pytest.raises(SlotInPast) as refused:
        clinic.book(db, p.id, now=last_start + timedelta(minutes=1))
    assert refused.value.detail == {"schedule_id": clinic.schedule.id}
    assert "已结束" in refused.value.text
    assert not db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.schedule_id == clinic.schedule.id))


def test_one_active_appointment_per_department_per_day(db: Session, clinic: Clinic) -> None:
    other_doctor_session = clinic.session(
        db, doctor=make_practitioner(db, clinic.hospital, clinic.department),
        session=SessionOfDay.pm)
    patient, me = clinic.patient(db)
    booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                 schedule_id=clinic.schedule.id, now=OPEN)
    with pytest.raises(LimitReached, match="同一科室同一天"):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                     schedule_id=other_doctor_session.id, now=OPEN)


def test_database_index_stops_a_second_claim_even_without_the_python_check(
        db: Session, clinic: Clinic) -> None:
    from sqlalchemy.exc import IntegrityError

    patient, me = clinic.patient(db)
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    other_slot = next(s for s in clinic.schedule.slots if s.id != appt.slot_id)
    duplicate = Appointment(
        slot_id=other_slot.id, schedule_id=clinic.schedule.id, patient_id=patient.id,
        hospital_id=clinic.hospital.id, department_id=clinic.department.id, day=DAY,
        start_at=other_slot.start_at, pool="online", channel="app", status="booked")
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(duplicate)
        db.flush()


def test_max_active_appointments(db: Session, clinic: Clinic) -> None:
    service.set_policy(db, hospital=clinic.hospital, pools={"max_active_appointments": 2})
    patient, me = clinic.patient(db)
    for _ in range(2):
        dept = make_department(db, clinic.hospital)
        s = clinic.session(db, doctor=make_practitioner(db, clinic.hospital, dept))
        s.department_id = dept.id
        db.flush()
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                     schedule_id=s.id, now=OPEN)
    with pytest.raises(LimitReached, match="最多2个"):
        booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                     schedule_id=clinic.schedule.id, now=OPEN)


def test_policy_below_the_floors_is_refused_and_nothing_changes(
        db: Session, clinic: Clinic) -> None:
    with pytest.raises(PolicyRejected, match="80%"):
        service.set_policy(db, hospital=clinic.hospital, pools={"online_share": 0.7})
    assert service.policy_for(db, clinic.hospital.id)[0].online_share == 0.85


def test_hold_then_confirm_and_an_expired_hold_comes_free(db: Session, clinic: Clinic) -> None:
    a, pa = clinic.patient(db)
    b, pb = clinic.patient(db)
    held = booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN, hold=True)
    assert held.status == "held" and held.hold_expires_at == OPEN + timedelta(minutes=5)
    with pytest.raises(SlotTaken):
        booking.book(db, principal=pb, patient_id=b.id, channel=Channel.app,
                     slot_id=held.slot_id, now=OPEN + timedelta(minutes=4))
    taken = booking.book(db, principal=pb, patient_id=b.id, channel=Channel.app,
                         slot_id=held.slot_id, now=OPEN + timedelta(minutes=5))
    assert taken.slot_id == held.slot_id
    db.refresh(held)
    assert held.status == "expired"
    with pytest.raises(HoldExpired):
        booking.confirm(db, principal=pa, appointment_id=held.id,
                        now=OPEN + timedelta(minutes=6))


def test_confirm_a_live_hold(db: Session, clinic: Clinic) -> None:
    a, pa = clinic.patient(db)
    held = booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN, hold=True)
    done = booking.confirm(db, principal=pa, appointment_id=held.id,
                           now=OPEN + timedelta(minutes=1))
    assert done.status == "booked" and db.get_one(Slot, done.slot_id).status == "booked"


def test_cancel_before_the_deadline_frees_the_slot(db: Session, clinic: Clinic) -> None:
    a, pa = clinic.patient(db)
    appt = booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    # DAY is a Monday: the working day before is Friday; the deadline 16:00 that day.
    friday = DAY - timedelta(days=3)
    with pytest.raises(CancelDeadlinePassed):
        booking.cancel(db, principal=pa, appointment_id=appt.id, now=local(friday, 16, 1))
    done = booking.cancel(db, principal=pa, appointment_id=appt.id, now=local(friday, 15, 59))
    assert done.status == "cancelled" and done.penalty_event is None
    slot = db.get_one(Slot, appt.slot_id)
    db.refresh(slot)
    assert slot.status == "free"


def test_window_can_cancel_late_and_it_counts_against_the_patient(
        db: Session, clinic: Clinic) -> None:
    a, pa = clinic.patient(db)
    appt = booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    done = booking.cancel(db, principal=clinic.window, appointment_id=appt.id,
                          now=local(DAY, 7, 10))
    assert done.penalty_event == "same_day_refund"


def test_bk6_noshow_restricts_online_booking_but_not_the_window(
        db: Session, clinic: Clinic) -> None:
    from onetrip.scheduling import queue

    a, pa = clinic.patient(db)
    missed = booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                          schedule_id=clinic.schedule.id, now=OPEN)
    assert queue.mark_noshows(db, now=local(DAY, 12, 30), hospital_id=clinic.hospital.id) == 1
    db.refresh(missed)
    assert missed.status == "noshow" and missed.penalty_event == "noshow"
    later = clinic.session(db, day=DAY + timedelta(days=7))
    with pytest.raises(PatientRestricted, match="30天") as err:
        booking.book(db, principal=pa, patient_id=a.id, channel=Channel.app,
                     schedule_id=later.id, now=local(DAY + timedelta(days=1), 9))
    assert err.value.detail["count"] == 1
    appt = booking.book(db, principal=clinic.window, patient_id=a.id, channel=Channel.window,
                        schedule_id=later.id, now=local(DAY + timedelta(days=7), 7, 30))
    assert appt.status == "booked"


def test_created_before_release_is_not_bookable_from_any_online_channel(
        db: Session, clinic: Clinic) -> None:
    a, pa = clinic.patient(db)
    with pytest.raises(PoolClosed):
        booking.book(db, principal=pa, patient_id=a.id, channel=Channel.wechat,
                     schedule_id=clinic.schedule.id, now=CREATED)


def test_a_claim_the_unique_indexes_refuse_is_answered_alone_and_leaves_the_slot_right(
        db: Session, clinic: Clinic) -> None:
    from sqlalchemy import update

    from onetrip.scheduling.models import Slot

    # An active appointment on a slot marked free (the slot was freed by hand): claiming it
    # is refused by the one-claim-per-slot index, and the slot stays taken.
    holder, _ = clinic.patient(db)
    held = clinic.book(db, holder.id)
    db.execute(update(Slot).where(Slot.id == held.slot_id).values(status="free"))
    other, _ = clinic.patient(db)
    with pytest.raises(SlotTaken):
        booking.book(db, principal=clinic.window, patient_id=other.id, channel=Channel.window,
                     slot_id=held.slot_id, now=OPEN)
    assert db.get_one(Slot, held.slot_id).status == "booked"
    # An active appointment the limit check cannot see (its start is long past, its day
    # the session's): the patient's index refuses it, and the slot goes back to free.
    patient, _ = clinic.patient(db)
    stale_slot = next(s for s in clinic.schedule.slots if s.status == "free")
    db.add(Appointment(slot_id=stale_slot.id, schedule_id=clinic.schedule.id,
                       patient_id=patient.id, hospital_id=clinic.hospital.id,
                       department_id=clinic.department.id, day=DAY,
                       start_at=OPEN - timedelta(days=30), pool="online", channel="app",
                       status="booked"))
    db.flush()
    free = next(s for s in clinic.schedule.slots if s.status == "free" and s.id != stale_slot.id)
    with pytest.raises(LimitReached):
        booking.book(db, principal=clinic.window, patient_id=patient.id,
                     channel=Channel.window, slot_id=free.id, now=OPEN)
    db.refresh(free)
    assert free.status == "free"
