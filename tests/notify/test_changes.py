"""Messages follow the appointment when it changes: waitlist offers, substitutions (RM-1)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity import empi
from onetrip.identity.rules import DocumentType, Role
from onetrip.identity.service import Principal
from onetrip.notify.models import Notification
from onetrip.scheduling import booking, queue, stopclinic, waitlist
from onetrip.scheduling.rules import Channel
from tests.factories import make_practitioner
from tests.notify.test_service import book, messages
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def test_rm1_a_freed_slot_offered_to_the_waitlist_tells_the_patient_until_when(
        db: Session, clinic: Clinic) -> None:
    full = clinic.session(db, day=DAY + timedelta(days=1), capacity=1)
    first, me = clinic.patient(db)
    appt = booking.book(db, principal=me, patient_id=first.id, channel=Channel.app,
                        schedule_id=full.id, now=OPEN)
    waiting, them = clinic.patient(db)
    entry = waitlist.join(db, principal=them, patient_id=waiting.id, schedule_id=full.id,
                          channel=Channel.app, now=OPEN)
    db.commit()
    freed_at = OPEN + timedelta(hours=2)
    booking.cancel(db, principal=me, appointment_id=appt.id, now=freed_at)
    db.commit()
    (offer,) = db.scalars(select(Notification).where(Notification.patient_id == waiting.id))
    assert offer.template == "waitlist_offer" and offer.status == "queued"
    assert offer.send_at == freed_at and offer.appointment_id is None
    assert entry.offer_expires_at is not None
    local_expiry = entry.offer_expires_at.astimezone(local(DAY, 0).tzinfo)
    assert offer.variables["expires"] == f"{local_expiry.month}月{local_expiry.day}日 " \
                                         f"{local_expiry:%H:%M}"
    assert offer.variables["time"].startswith("12月15日")
    accepted = waitlist.accept(db, principal=them, entry_id=entry.id,
                               now=freed_at + timedelta(minutes=5))
    db.commit()
    assert set(messages(db, accepted.id)) == {"booking_confirmed", "day_before", "hour_before"}


def test_rm1_a_substitute_doctor_is_told_and_the_queued_reminders_name_them(
        db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="李明",
                                  title="associate_chief_physician")
    stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                          practitioner_id=colleague.id, reason="专家外出会诊",
                          now=OPEN + timedelta(minutes=5))
    db.commit()
    got = messages(db, appt.id)
    assert got["substituted"].status == "queued"
    assert got["substituted"].send_at == OPEN + timedelta(minutes=5)
    assert got["substituted"].variables["doctor"] == "李明副主任医师"
    assert got["booking_confirmed"].variables["doctor"] == "李明副主任医师"
    assert got["day_before"].send_at == local(DAY - timedelta(days=1), 18)


def test_rm1_checking_in_before_the_hour_reminder_drops_it(db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    # Check-in opens 120 minutes ahead by default (BK-8); this patient is 90 minutes early.
    queue.check_in(db, principal=clinic.kiosk(), appointment_id=appt.id,
                   now=appt.start_at - timedelta(minutes=90), patient_id=appt.patient_id)
    db.commit()
    got = messages(db, appt.id)
    assert got["hour_before"].status == "cancelled"
    assert got["booking_confirmed"].status == "queued"


def test_id3_messages_follow_a_merge_to_the_survivor_and_come_back_on_unmerge(
        db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    duplicate = appt.patient_id
    survivor, _ = clinic.patient(db, document_type=DocumentType.passport,
                                 document_number="E20261188")
    admin = Principal(role=Role.regional_admin, label="empi")
    merge = empi.merge_patients(db, admin, source_id=duplicate, target_id=survivor.id)
    db.commit()
    assert {n.patient_id for n in messages(db, appt.id).values()} == {survivor.id}
    empi.unmerge_patients(db, admin, merge_id=merge.id)
    db.commit()
    assert {n.patient_id for n in messages(db, appt.id).values()} == {duplicate}
