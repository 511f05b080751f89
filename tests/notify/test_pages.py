"""RM-1: the patient's inbox and the staff outbox, through the app (access, filters, resend)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Account, AuditEvent
from onetrip.identity.rules import Relationship, Role
from onetrip.notify import channels, service
from onetrip.notify.channels import Outgoing, PermanentFailure
from onetrip.notify.models import Notification
from onetrip.scheduling import booking
from onetrip.scheduling.rules import Channel
from tests.factories import auth, make_account, make_hospital, make_patient, make_token
from tests.notify.test_service import messages
from tests.scheduling.conftest import DAY, OPEN, Clinic


@dataclass
class Family:
    headers: dict[str, str]
    self_id: int
    child_id: int
    sent: list[Notification]


def _refuse(_db: Session, msg: Outgoing) -> str:
    raise PermanentFailure("HTTP 200 isv.MOBILE_NUMBER_ILLEGAL refused")


@pytest.fixture
def family(db: Session, clinic: Clinic) -> Family:
    account = make_account(db)
    me = make_patient(db, principal=account, name="林晓")
    child = make_patient(db, principal=account, name="林小雨", relationship=Relationship.child,
                         birth_date=DAY.replace(year=2016))
    sent = []
    for patient in (me, child):
        appt = booking.book(db, principal=clinic.patient_principal(patient.id),
                            patient_id=patient.id, channel=Channel.app,
                            schedule_id=clinic.schedule.id, now=OPEN)
        db.flush()
        db.commit()
        row = messages(db, appt.id)["booking_confirmed"]
        service.deliver(db, row, now=OPEN)
        sent.append(row)
    db.flush()
    secret = identity_auth.start_session(db, account=db.get_one(Account, account.account_id))
    return Family(auth(secret), me.id, child.id, sent)


def test_rm1_the_inbox_shows_sent_messages_of_self_and_family_and_marks_them_read(
        client: TestClient, family: Family, db: Session, clinic: Clinic) -> None:
    stranger, _ = clinic.patient(db)
    booking.book(db, principal=clinic.patient_principal(stranger.id), patient_id=stranger.id,
                 channel=Channel.app, schedule_id=clinic.schedule.id, now=OPEN)
    r = client.get("/me/inbox", headers=family.headers)
    assert r.status_code == 200
    assert r.text.count('data-template="booking_confirmed"') == 2  # queued reminders not yet
    assert "本人 林晓" in r.text and "子女 林小雨" in r.text and "2条未读" in r.text
    assert stranger.name not in r.text
    first = family.sent[0].id
    r = client.post(f"/me/inbox/read?notification_id={first}", headers=family.headers,
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(family.sent[0])
    assert family.sent[0].read_at is not None and family.sent[1].read_at is None
    assert "1条未读" in client.get("/me/inbox", headers=family.headers).text
    client.post("/me/inbox/read", headers=family.headers)
    db.refresh(family.sent[1])
    assert family.sent[1].read_at is not None


def test_rm1_an_inbox_read_mark_never_touches_another_accounts_message(
        client: TestClient, family: Family, db: Session) -> None:
    other = make_account(db)
    make_patient(db, principal=other)
    secret = identity_auth.start_session(db, account=db.get_one(Account, other.account_id))
    client.post(f"/me/inbox/read?notification_id={family.sent[0].id}", headers=auth(secret))
    db.refresh(family.sent[0])
    assert family.sent[0].read_at is None
    r = client.get("/me/inbox", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=/me/inbox"


def test_rm1_staff_outbox_filters_shows_the_reason_and_resends_without_a_duplicate(
        client: TestClient, family: Family, db: Session, clinic: Clinic,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(channels.CHANNELS, "refusing", _refuse)
    monkeypatch.setattr(get_settings(), "notify_sms_channel", "refusing")
    failed = messages(db, family.sent[0].appointment_id or 0)["day_before"]
    service.deliver(db, failed, now=failed.send_at)
    assert failed.status == "failed"
    window = auth(make_token(db, Role.window, clinic.hospital))
    r = client.get("/staff/notifications", params={"status": "failed"}, headers=window)
    assert r.status_code == 200
    assert r.text.count('data-status="failed"') == 1 and "isv.MOBILE_NUMBER_ILLEGAL" in r.text
    assert "林*" in r.text and "林晓" not in r.text  # masked name
    assert "****" in r.text
    day = (DAY - timedelta(days=1)).isoformat()
    by_day = client.get("/staff/notifications", params={"day": day}, headers=window).text
    assert by_day.count("<tr data-id=") == 2  # both day-before reminders
    by_patient = client.get("/staff/notifications", headers=window,
                            params={"patient": "林小", "template": "booking_confirmed",
                                    "channel": "sms"}).text
    assert by_patient.count("<tr data-id=") == 1
    empty_form = client.get("/staff/notifications?template=&channel=&status=failed&day=&patient=",
                            headers=window).text
    assert empty_form.count("<tr data-id=") == 1
    bad_day = client.get("/staff/notifications", params={"day": "2026-13-01"}, headers=window)
    assert bad_day.status_code == 200 and "日期格式应为YYYY-MM-DD" in bad_day.text
    for day in ("0001-01-01", "9999-12-31"):  # local midnight no UTC time can hold
        r = client.get("/staff/notifications", params={"day": day}, headers=window)
        assert 400 <= r.status_code < 500, (day, r.status_code)
    for typed in ("²", "99999999999999999999"):  # no patient's id: no message is theirs
        r = client.get("/staff/notifications", params={"patient": typed}, headers=window)
        assert r.status_code == 200 and "<tr data-id=" not in r.text, typed
    r = client.post(f"/staff/notifications/{failed.id}/resend?back=status%3Dfailed",
                    headers=window, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/staff/notifications?status=failed&flash=resent"
    db.refresh(failed)
    assert failed.status == "queued" and failed.resends == 1 and failed.attempts == 0
    again = client.post(f"/staff/notifications/{failed.id}/resend", headers=window)
    assert again.status_code == 409 and "只有发送失败的消息可以重发" in again.text
    assert db.scalar(select(func.count()).select_from(Notification).where(
        Notification.appointment_id == failed.appointment_id,
        Notification.template == "day_before")) == 1
    assert db.scalar(select(AuditEvent.id).where(AuditEvent.action == "notification.resend"))


def test_rm1_the_outbox_is_for_window_and_hospital_admins_of_that_hospital(
        client: TestClient, family: Family, db: Session, clinic: Clinic) -> None:
    assert client.get("/staff/notifications").status_code == 401
    assert client.get("/staff/notifications", headers=family.headers).status_code == 403
    doctor = auth(make_token(db, Role.doctor, clinic.hospital))
    assert client.get("/staff/notifications", headers=doctor).status_code == 403
    admin = auth(make_token(db, Role.hospital_admin, clinic.hospital))
    assert client.get("/staff/notifications", headers=admin).text.count("<tr data-id=") == 6
    elsewhere = auth(make_token(db, Role.window, make_hospital(db, level="secondary")))
    page = client.get("/staff/notifications", headers=elsewhere)
    assert page.status_code == 200 and "<tr data-id=" not in page.text
    resend = client.post(f"/staff/notifications/{family.sent[0].id}/resend", headers=elsewhere)
    assert resend.status_code == 404
