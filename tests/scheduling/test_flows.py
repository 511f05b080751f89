"""Stop-clinic, substitute, waitlist, check-in and queue (BK-6, BK-8, BK-11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from onetrip.errors import InvalidInput
from onetrip.identity.rules import DocumentType
from onetrip.scheduling import booking, queue, stopclinic, sweep, waitlist
from onetrip.scheduling.errors import CheckInRefused, OfferUnavailable, SlotTaken, WaitlistClosed
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Channel, SessionOfDay
from onetrip.scheduling.schemas import CheckInRequest
from tests.factories import make_practitioner
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def fill(db: Session, clinic: Clinic, n: int, schedule_id: int | None = None,
         ) -> list[Appointment]:
    out = []
    for _ in range(n):
        p, pp = clinic.patient(db)
        out.append(booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                                schedule_id=schedule_id or clinic.schedule.id, now=OPEN))
    return out


def test_bk6_stopping_a_full_session_leaves_every_patient_an_offer_or_a_notice(
        db: Session, clinic: Clinic) -> None:
    # Two equivalent sessions later in the week, one of them small.
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=1), doctor=colleague, capacity=2)
    booked = fill(db, clinic, 5)
    result = stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                                    reason="专家外出会诊", now=OPEN + timedelta(hours=1))
    assert result.schedule.status == "stopped"
    assert sorted(o.appointment_id for o in result.offers) == sorted(a.id for a in booked)
    with_slots = [o for o in result.offers if o.slot_ids]
    assert len(with_slots) == 2  # the other session has two free slots
    held = {o.held_slot_id for o in with_slots}
    assert len(held) == 2 and None not in held
    notices = [o for o in result.offers if not o.slot_ids]
    assert all(o.refund_flagged and "退还" in o.note for o in notices)
    for a in booked:
        db.refresh(a)
        assert a.status == "cancelled" and a.cancel_reason.startswith("停诊")
    assert all(s.status in ("blocked", "booked") for s in clinic.schedule.slots)


def test_bk6_accept_a_rebooking_offer_in_one_action(db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department,
                                  service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=2), doctor=colleague)
    (appt,) = fill(db, clinic, 1)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window,
                                      schedule_id=clinic.schedule.id, reason="停诊",
                                      now=OPEN).offers
    patient_principal = clinic.patient_principal(appt.patient_id)
    new = stopclinic.accept_offer(db, principal=patient_principal, offer_id=offer.id,
                                  slot_id=offer.slot_ids[0], now=OPEN + timedelta(minutes=3))
    assert new.rebooked_from_id == appt.id and new.status == "booked"
    db.refresh(offer)
    assert offer.status == "accepted" and not offer.refund_flagged
    with pytest.raises(OfferUnavailable):
        stopclinic.accept_offer(db, principal=patient_principal, offer_id=offer.id,
                                slot_id=offer.slot_ids[0], now=OPEN + timedelta(minutes=4))


def test_bk6_a_substituted_session_stays_bookable_and_can_still_be_stopped(
        db: Session, clinic: Clinic) -> None:
    other = make_practitioner(db, clinic.hospital, clinic.department, name="替班医生")
    stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                          practitioner_id=other.id, reason="原医生出差", now=OPEN)
    p, _ = clinic.patient(db)
    appt = booking.book(db, principal=clinic.window, patient_id=p.id, channel=Channel.window,
                        now=OPEN, schedule_id=clinic.schedule.id)
    assert appt.status == "booked"
    result = stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                                    reason="替诊医生也无法出诊", now=OPEN)
    assert clinic.schedule.status == "stopped" and appt.id in {
        o.appointment_id for o in result.offers}


def test_substitute_keeps_the_appointments(db: Session, clinic: Clinic) -> None:
    booked = fill(db, clinic, 2)
    other = make_practitioner(db, clinic.hospital, clinic.department)
    s = stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                              practitioner_id=other.id, reason="替诊", now=OPEN)
    assert s.status == "substituted" and s.substitute_practitioner_id == other.id
    assert all(db.get_one(Appointment, a.id).status == "booked" for a in booked)
    with pytest.raises(InvalidInput):
        stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.session(
            db, session=SessionOfDay.pm).id, practitioner_id=clinic.doctor.id, reason="",
            now=OPEN)


def test_waitlist_offer_passes_on_after_expiry(db: Session, clinic: Clinic) -> None:
    online_only = local(DAY - timedelta(days=6), 9)  # referral slots returned to online
    taken = []
    while True:
        p, pp = clinic.patient(db)
        try:
            taken.append(booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                                      schedule_id=clinic.schedule.id, now=online_only))
        except Exception:
            break
    first, pf = clinic.patient(db)
    second, ps = clinic.patient(db)
    e1 = waitlist.join(db, principal=pf, patient_id=first.id, schedule_id=clinic.schedule.id,
                       channel=Channel.app, now=online_only)
    e2 = waitlist.join(db, principal=ps, patient_id=second.id, schedule_id=clinic.schedule.id,
                       channel=Channel.app, now=online_only + timedelta(minutes=1))
    owner = clinic.patient_principal(taken[0].patient_id)
    booking.cancel(db, principal=owner, appointment_id=taken[0].id,
                   now=online_only + timedelta(minutes=2))
    db.refresh(e1)
    assert e1.status == "offered" and e1.offered_slot_id == taken[0].slot_id
    # Nobody else can take the held slot meanwhile.
    with pytest.raises(SlotTaken):
        booking.book(db, principal=ps, patient_id=second.id, channel=Channel.app,
                     slot_id=taken[0].slot_id, now=online_only + timedelta(minutes=3))
    sweep.sweep(db, now=online_only + timedelta(minutes=18))
    db.refresh(e1)
    db.refresh(e2)
    assert e1.status == "expired" and e2.status == "offered"
    appt = waitlist.accept(db, principal=ps, entry_id=e2.id,
                           now=online_only + timedelta(minutes=20))
    assert appt.slot_id == taken[0].slot_id and appt.status == "booked"


def test_waitlist_refuses_while_slots_remain(db: Session, clinic: Clinic) -> None:
    p, pp = clinic.patient(db)
    with pytest.raises(WaitlistClosed):
        waitlist.join(db, principal=pp, patient_id=p.id, schedule_id=clinic.schedule.id,
                      channel=Channel.app, now=OPEN)


def test_bk8_check_in_needs_the_booked_patients_document(db: Session, clinic: Clinic) -> None:
    a, b = fill(db, clinic, 2)
    kiosk = clinic.kiosk()
    with pytest.raises(CheckInRefused, match="不可转让"):
        queue.check_in(db, principal=kiosk, appointment_id=a.id, now=local(DAY, 7, 50),
                       patient_id=b.patient_id)
    with pytest.raises(CheckInRefused, match="分钟内报到"):
        queue.check_in(db, principal=kiosk, appointment_id=a.id, now=local(DAY, 5),
                       patient_id=a.patient_id)
    done = queue.check_in(db, principal=kiosk, appointment_id=a.id, now=local(DAY, 7, 50),
                          patient_id=a.patient_id)
    assert done.status == "arrived"


def test_bk11_queue_positions_waits_and_call_next(db: Session, clinic: Clinic) -> None:
    booked = sorted(fill(db, clinic, 3), key=lambda a: a.start_at)
    kiosk = clinic.kiosk()
    late_first = booked[0]
    for appt, when in ((booked[1], local(DAY, 7, 55)), (booked[2], local(DAY, 8, 10)),
                       (late_first, local(DAY, 8, 45))):
        queue.check_in(db, principal=kiosk, appointment_id=appt.id, now=when,
                       patient_id=appt.patient_id)
    order = queue.queue_for(db, schedule_id=clinic.schedule.id)
    assert [e.appointment.id for e in order] == [booked[1].id, booked[2].id, late_first.id]
    assert order[2].late and order[2].position == 2
    assert order[2].wait == timedelta(minutes=12)
    called = queue.call_next(db, principal=clinic.doctor_principal,
                             schedule_id=clinic.schedule.id, now=local(DAY, 8, 50))
    assert called is not None and called.id == booked[1].id
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8, 56))
    db.refresh(booked[1])
    assert booked[1].status == "fulfilled"
    remaining = queue.queue_for(db, schedule_id=clinic.schedule.id)
    assert [e.appointment.id for e in remaining] == [late_first.id]


def test_sweep_is_idempotent(db: Session, clinic: Clinic) -> None:
    p, pp = clinic.patient(db)
    held = booking.book(db, principal=pp, patient_id=p.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN, hold=True)
    first = sweep.sweep(db, now=OPEN + timedelta(minutes=10))
    second = sweep.sweep(db, now=OPEN + timedelta(minutes=10))
    assert first.holds_expired == 1 and second.holds_expired == 0
    assert db.get_one(Slot, held.slot_id).status == "free"


def test_schedule_changes_are_audited(db: Session, clinic: Clinic) -> None:
    from onetrip.identity import audit

    fill(db, clinic, 2)
    stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                           reason="设备故障", now=OPEN)
    (row,) = [r for r in audit.search(db, limit=20) if r.action == "schedule.stop"]
    assert row.actor_role == "window" and row.detail["appointments"] == 2
    assert row.detail["reason"] == "设备故障"


def test_id3_merge_carries_appointments_and_unmerge_returns_them(
        db: Session, clinic: Clinic) -> None:
    from onetrip.identity import empi
    from onetrip.identity.rules import Role
    from onetrip.identity.service import Principal

    (appt,) = fill(db, clinic, 1)
    survivor, _ = clinic.patient(db, document_type=DocumentType.passport,
                                 document_number="E20261122")
    admin = Principal(role=Role.regional_admin, label="empi")
    merge = empi.merge_patients(db, admin, source_id=appt.patient_id, target_id=survivor.id)
    db.commit()
    db.refresh(appt)
    assert appt.patient_id == survivor.id
    empi.unmerge_patients(db, admin, merge_id=merge.id)
    db.commit()
    db.refresh(appt)
    assert appt.patient_id != survivor.id


def test_id3_merge_refused_when_both_records_hold_the_same_clinic_day(
        db: Session, clinic: Clinic) -> None:
    from onetrip.identity import empi
    from onetrip.identity.rules import Role
    from onetrip.identity.service import Principal
    from onetrip.scheduling.subscribers import MergeBlockedByAppointments

    (a,) = fill(db, clinic, 1)
    other_session = clinic.session(db, doctor=make_practitioner(db, clinic.hospital,
                                                                clinic.department),
                                   session=SessionOfDay.pm)
    survivor, me = clinic.patient(db, document_type=DocumentType.passport,
                                  document_number="E20261123")
    b = booking.book(db, principal=me, patient_id=survivor.id, channel=Channel.app,
                     schedule_id=other_session.id, now=OPEN)
    admin = Principal(role=Role.regional_admin, label="empi")
    empi.merge_patients(db, admin, source_id=a.patient_id, target_id=b.patient_id)
    with pytest.raises(MergeBlockedByAppointments):
        db.commit()


def test_bk8_api_check_in_takes_a_64_character_e_health_card() -> None:
    card = CheckInRequest(document_type=DocumentType.health_card, document_number="AB" * 32)
    assert card.document_number == "AB" * 32
    with pytest.raises(ValidationError):
        CheckInRequest(document_type=DocumentType.health_card, document_number="A" * 65)
