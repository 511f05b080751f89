"""RM-1: the HTTP SMS and WeChat adapters against a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.identity.models import Patient
from onetrip.identity.service import patient_phone
from onetrip.notify import gateways, service
from onetrip.notify.models import Notification
from onetrip.scheduling import booking
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel
from tests.notify import fake_gateways
from tests.notify.fake_gateways import Gateway
from tests.notify.test_service import book, messages
from tests.scheduling.conftest import OPEN, Clinic


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    for gw in fake_gateways.serve():
        s = get_settings()
        monkeypatch.setattr(s, "notify_sms_channel", "http")
        monkeypatch.setattr(s, "notify_sms_url", f"{gw.url}/sms/send")
        monkeypatch.setattr(s, "notify_sms_access_key_id", "LTAI-test")
        monkeypatch.setattr(s, "notify_sms_access_key_secret",
                            type(s.notify_sms_access_key_secret)(fake_gateways.SECRET))
        monkeypatch.setattr(s, "notify_channels", ["wechat", "sms"])
        monkeypatch.setattr(s, "notify_wechat_channel", "http")
        monkeypatch.setattr(s, "notify_wechat_url", gw.url)
        monkeypatch.setattr(s, "notify_wechat_app_id", "wx-test")
        monkeypatch.setattr(s, "notify_wechat_templates",
                            {"booking_confirmed": "TPL-booked", "day_before": "TPL-day"})
        monkeypatch.setattr(gateways, "TOKENS", gateways._TokenCache())
        yield gw


def book_bound(db: Session, clinic: Clinic, openid: str) -> Appointment:
    """A booking by a patient who follows the official account."""
    patient, me = clinic.patient(db)
    service.bind_wechat(db, patient_id=patient.id, openid=openid)
    appt = booking.book(db, principal=me, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    db.commit()
    return appt


def confirmation(db: Session, clinic: Clinic) -> Notification:
    return messages(db, book(db, clinic).id)["booking_confirmed"]


def test_rm1_the_sms_gateway_gets_template_code_parameters_signature_and_our_out_id(
        db: Session, clinic: Clinic, gateway: Gateway) -> None:
    row = confirmation(db, clinic)
    service.deliver(db, row, now=OPEN)
    assert row.status == "sent" and row.provider_message_id == "biz-1"
    (sent,) = gateway.requests
    assert gateway.bad_signatures == 0
    assert sent["TemplateCode"] == "OT_BOOKED" and sent["SignName"] == "最多跑一次"
    assert sent["OutId"] == f"onetrip-{row.id}"
    assert json.loads(sent["TemplateParam"]) == row.variables
    phone = patient_phone(db.get_one(Patient, row.patient_id))
    assert sent["PhoneNumbers"] == phone.removeprefix("+86")


def test_rm1_failures_retry_with_backoff_and_the_last_reason_is_kept(
        db: Session, clinic: Clinic, gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    row = confirmation(db, clinic)
    gateway.script = ["503"] * 5
    now = OPEN
    for attempt in range(1, 6):
        service.deliver(db, row, now=now)
        assert row.attempts == attempt and row.last_error == \
            "GatewayError: HTTP 503 ServiceUnavailable gateway busy"
        if attempt < 5:
            assert row.status == "queued"
            assert row.next_attempt_at - now == timedelta(seconds=30 * 2 ** (attempt - 1))
            now = row.next_attempt_at
    assert row.status == "failed" and gateway.handset == []
    assert len(gateway.requests) == 5
    phone = patient_phone(db.get_one(Patient, row.patient_id))
    assert phone[3:] not in caplog.text


def test_rm1_a_retry_after_a_lost_answer_sends_nothing_twice(
        db: Session, clinic: Clinic, gateway: Gateway) -> None:
    row = confirmation(db, clinic)
    gateway.script = ["lost"]
    service.deliver(db, row, now=OPEN)
    assert row.status == "queued" and "HTTP 502" in row.last_error
    service.deliver(db, row, now=row.next_attempt_at)
    assert row.status == "sent" and row.provider_message_id == "biz-1"
    assert [r["OutId"] for r in gateway.requests] == [f"onetrip-{row.id}"] * 2
    assert len(gateway.handset) == 1  # the phone got one message


def test_rm1_a_refused_number_fails_at_once_without_retries(
        db: Session, clinic: Clinic, gateway: Gateway) -> None:
    row = confirmation(db, clinic)
    gateway.script = ["isv.MOBILE_NUMBER_ILLEGAL"]
    service.deliver(db, row, now=OPEN)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error == "PermanentFailure: HTTP 200 isv.MOBILE_NUMBER_ILLEGAL refused"


def test_rm1_a_patient_bound_to_wechat_gets_template_messages_with_one_token(
        db: Session, clinic: Clinic, gateway: Gateway) -> None:
    appt = book_bound(db, clinic, "oWx-0123456789abcdef")
    got = messages(db, appt.id)
    assert {n.channel for n in got.values()} == {"wechat"}
    service.deliver(db, got["booking_confirmed"], now=OPEN)
    service.deliver(db, got["day_before"], now=got["day_before"].send_at)
    assert got["booking_confirmed"].status == got["day_before"].status == "sent"
    first = gateway.requests[0]
    assert first["touser"] == "oWx-0123456789abcdef" and first["template_id"] == "TPL-booked"
    assert first["client_msg_id"] == f"onetrip-{got['booking_confirmed'].id}"
    assert first["data"]["department"] == {"value": "心血管内科"}
    assert first["url"].endswith(f"/me/appointments/{appt.id}")
    assert gateway.tokens_issued == 1
    assert {r["access_token"] for r in gateway.requests} == {"token-1"}
    # A template the official account has not approved cannot be sent: failed, not retried.
    service.deliver(db, got["hour_before"], now=got["hour_before"].send_at)
    assert got["hour_before"].status == "failed"
    assert "no WeChat template_id for hour_before" in got["hour_before"].last_error


def test_rm1_an_expired_wechat_token_is_renewed_once(
        db: Session, clinic: Clinic, gateway: Gateway) -> None:
    appt = book_bound(db, clinic, "oWx-renew")
    row = messages(db, appt.id)["booking_confirmed"]
    gateway.script = ["42001"]  # access_token expired
    service.deliver(db, row, now=OPEN)
    assert row.status == "sent" and gateway.tokens_issued == 2
    assert len(gateway.handset) == 1


def test_rm1_the_inbox_channel_needs_no_gateway(
        db: Session, clinic: Clinic, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "notify_channels", [])
    row = confirmation(db, clinic)
    assert row.channel == "inbox"
    service.deliver(db, row, now=OPEN)
    assert row.status == "sent" and row.provider_message_id == f"inbox-{row.id}"
    assert gateway.requests == []
