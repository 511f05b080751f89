"""Reminders queued from booking events in the same transaction, with a fake clock (RM-1/2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.config import get_settings
from onetrip.identity.models import Patient
from onetrip.identity.service import patient_phone
from onetrip.notify import channels, service
from onetrip.notify.channels import Outgoing
from onetrip.notify.models import Notification
from onetrip.notify.templates import render
from onetrip.scheduling import booking, queue, stopclinic
from onetrip.scheduling.events import NoShowRecorded
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel
from tests.factories import make_practitioner
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def book(db: Session, clinic: Clinic, *, now: datetime = OPEN) -> Appointment:
    patient, me = clinic.patient(db)
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=now)
    db.commit()
    return appt


def messages(db: Session, appointment_id: int) -> dict[str, Notification]:
    # populate_existing: the services update rows in bulk, past objects already loaded.
    rows = db.scalars(select(Notification).where(Notification.appointment_id == appointment_id)
                      .execution_options(populate_existing=True))
    return {n.template: n for n in rows}


def test_rm1_a_committed_booking_queues_confirmation_and_both_reminders(
        db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    got = messages(db, appt.id)
    assert set(got) == {"booking_confirmed", "day_before", "hour_before"}
    assert got["booking_confirmed"].send_at == OPEN
    assert got["day_before"].send_at == local(DAY - timedelta(days=1), 18)
    assert got["hour_before"].send_at == appt.start_at - timedelta(hours=1)
    assert all(n.status == "queued" and n.channel == "sms" for n in got.values())
    v = got["booking_confirmed"].variables
    assert v["department"] == "心血管内科" and v["time"].startswith("12月14日")
    assert v["cancel_deadline"] == "12月11日 16:00"  # the working day before, BK-6


def test_bk6_the_confirmation_promises_online_cancelling_only_before_the_deadline(
        db: Session, clinic: Clinic) -> None:
    # The deadline is 16:00 of the working day before the visit (Friday for a Monday).
    early = book(db, clinic, now=local(DAY - timedelta(days=6), 9))
    text = render("booking_confirmed", messages(db, early.id)["booking_confirmed"].variables)
    assert "如需取消，请在12月11日 16:00前操作" in text
    # Booked on the Saturday: patients can no longer cancel online (only at the window), so
    # the confirmation sends them there instead of naming a moment already past.
    late = book(db, clinic, now=OPEN)
    text = render("booking_confirmed", messages(db, late.id)["booking_confirmed"].variables)
    assert "已过网上取消截止时间" in text and "前操作" not in text


def test_rm1_a_rolled_back_booking_queues_nothing(db: Session, clinic: Clinic) -> None:
    patient, me = clinic.patient(db)
    db.commit()
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    appt_id = appt.id
    db.rollback()
    assert db.scalar(select(Notification.id).where(
        Notification.appointment_id == appt_id)) is None
    assert db.scalar(select(Notification.id).where(
        Notification.patient_id == patient.id)) is None


def test_rm1_the_same_event_handled_twice_queues_once(db: Session, clinic: Clinic) -> None:
    from onetrip.notify import subscribers
    from onetrip.scheduling.events import AppointmentBooked

    appt = book(db, clinic)
    again = AppointmentBooked.of(appt)
    subscribers.on_booked(db, [again, again])  # twice more, twice in one batch
    db.flush()
    assert len(db.scalars(select(Notification).where(
        Notification.appointment_id == appt.id)).all()) == 3


def test_rm1_quiet_hours_hold_a_late_night_confirmation_until_seven(
        db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic, now=local(DAY - timedelta(days=3), 23, 10))
    assert messages(db, appt.id)["booking_confirmed"].send_at == \
        local(DAY - timedelta(days=2), 7)


def test_rm1_cancelling_cancels_the_reminders_and_sends_a_notice(
        db: Session, clinic: Clinic) -> None:
    booked = local(DAY - timedelta(days=5), 10)  # before the cancellation deadline
    appt = book(db, clinic, now=booked)
    booking.cancel(db, principal=clinic.patient_principal(appt.patient_id),
                   appointment_id=appt.id, now=booked + timedelta(hours=1), reason="行程变更")
    db.commit()
    got = messages(db, appt.id)
    # RM-1: a confirmation not yet sent would now tell of a visit that no longer takes place.
    assert got["booking_confirmed"].status == got["day_before"].status == \
        got["hour_before"].status == "cancelled"
    assert got["cancelled"].status == "queued"
    assert got["cancelled"].send_at == booked + timedelta(hours=1)
    assert got["cancelled"].variables["reason"] == "原因：行程变更。"


def test_rm1_stop_clinic_then_rebooking_moves_the_reminders(db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department, service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=2), doctor=colleague)
    appt = book(db, clinic)
    (offer,) = stopclinic.stop_clinic(db, principal=clinic.window,
                                      schedule_id=clinic.schedule.id, reason="专家外出会诊",
                                      now=OPEN + timedelta(minutes=5)).offers
    db.commit()
    old = messages(db, appt.id)
    assert {t for t, n in old.items() if n.status == "queued"} == {"stop_clinic"}
    assert "已为您保留12月16日" in old["stop_clinic"].variables["offer"]
    new = stopclinic.accept_offer(db, principal=clinic.patient_principal(appt.patient_id),
                                  offer_id=offer.id, slot_id=offer.slot_ids[0],
                                  now=OPEN + timedelta(minutes=8))
    db.commit()
    moved = messages(db, new.id)
    assert set(moved) == {"booking_confirmed", "day_before", "hour_before"}
    assert all(n.status == "queued" for n in moved.values())
    # The patient has answered the stop-clinic notice: if still unsent, it would only
    # confuse them now; nothing about the old appointment is left to send.
    assert {n.status for n in messages(db, appt.id).values()} == {"cancelled"}
    assert moved["day_before"].send_at == local(DAY + timedelta(days=1), 18)
    assert moved["hour_before"].send_at == new.start_at - timedelta(hours=1)


def test_rm1_a_no_show_is_told(db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    # What queue.mark_noshows does per appointment; the sweep itself would also mark the
    # demo region's 20,000 earlier appointments.
    marked = appt.start_at + timedelta(hours=6)
    appt.status, appt.noshow_at = "noshow", appt.start_at
    events.publish(db, NoShowRecorded(appointment_id=appt.id, patient_id=appt.patient_id,
                                      marked_at=marked))
    db.commit()
    notice = messages(db, appt.id)["no_show"]
    # Told from when it was marked, not from the visit's time it counts at.
    assert notice.status == "queued" and notice.send_at == marked


def test_rm1_you_are_next_is_queued_when_the_doctor_calls(db: Session, clinic: Clinic) -> None:
    appt = book(db, clinic)
    queue.check_in(db, principal=clinic.kiosk(), appointment_id=appt.id,
                   now=appt.start_at - timedelta(minutes=10), patient_id=appt.patient_id)
    called = queue.call_next(db, principal=clinic.doctor_principal,
                             schedule_id=clinic.schedule.id, now=appt.start_at)
    db.commit()
    assert called is not None and called.id == appt.id
    assert messages(db, appt.id)["your_turn"].send_at == appt.start_at


def test_rm1_the_worker_sends_through_the_console_channel(
        db: Session, clinic: Clinic, caplog: pytest.LogCaptureFixture) -> None:
    appt = book(db, clinic)
    phone = patient_phone(db.get_one(Patient, appt.patient_id))
    caplog.set_level("INFO")
    due = service.claim_due(db, now=OPEN + timedelta(seconds=1), limit=50)
    assert [n.template for n in due] == ["booking_confirmed"]
    service.deliver(db, due[0], now=OPEN + timedelta(seconds=1))
    assert due[0].status == "sent" and due[0].provider_message_id.startswith("console-")
    assert phone[3:] not in caplog.text and phone[-4:] in caplog.text


def test_rm1_failures_back_off_and_never_leak_the_phone(
        db: Session, clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_db: Session, msg: Outgoing) -> str:
        raise ConnectionError(f"gateway refused {msg.phone}")

    monkeypatch.setitem(channels.CHANNELS, "broken", broken)
    monkeypatch.setattr(get_settings(), "notify_sms_channel", "broken")
    appt = book(db, clinic)
    row = messages(db, appt.id)["booking_confirmed"]
    now = OPEN
    for attempt in range(1, 6):
        service.deliver(db, row, now=now)
        assert row.attempts == attempt and "gateway refused ***" in row.last_error
        if attempt < 5:
            assert row.status == "queued" and row.next_attempt_at == now + timedelta(
                seconds=30 * 2 ** (attempt - 1))
            now = row.next_attempt_at
    assert row.status == "failed"


def test_rm1_a_sent_confirmation_stays_sent_when_the_appointment_is_cancelled(
        db: Session, clinic: Clinic) -> None:
    booked = local(DAY - timedelta(days=5), 10)
    appt = book(db, clinic, now=booked)
    confirmation = messages(db, appt.id)["booking_confirmed"]
    service.deliver(db, confirmation, now=booked)
    booking.cancel(db, principal=clinic.patient_principal(appt.patient_id),
                   appointment_id=appt.id, now=booked + timedelta(hours=1))
    db.commit()
    got = messages(db, appt.id)
    assert got["booking_confirmed"].status == "sent"
    assert got["hour_before"].status == "cancelled" and got["cancelled"].status == "queued"
