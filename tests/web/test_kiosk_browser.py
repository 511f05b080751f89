"""The kiosk walk in a real headless Chromium at a portrait kiosk screen (BK-10, ID-4): the
device signs in with its token, a patient swipes (types) a resident ID, picks up the ticket
of today's booking with check-in, sees the printable ticket, and is forgotten on "完成"."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onetrip.config import get_settings
from onetrip.db import session_scope, utcnow
from onetrip.identity import service as identity_service
from onetrip.identity.rules import DocumentType, Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital, Practitioner
from onetrip.scheduling import booking, service
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import WINDOW, resident_id

pytestmark = pytest.mark.browser

KIOSK_VIEW = {"width": 1080, "height": 1920}


def _session_starting_soon() -> tuple[str, str, int]:
    """A kiosk token, a patient's number and a booking of theirs that can check in now.

    The session starts 20 minutes from now (check-in opens 2 hours before); the booking is
    made as it would have been the evening before, so the test runs at any hour.
    """
    tz = get_settings().tz
    start = (utcnow() + timedelta(minutes=20)).astimezone(tz).replace(second=0, microsecond=0)
    number = resident_id(date(1946, 8, 8), seq="771")
    with session_scope() as db:
        hospital = db.scalars(select(Hospital).where(Hospital.level == "tertiary")
                              .order_by(Hospital.id)).first()
        assert hospital is not None
        doctor = db.scalars(select(Practitioner).where(Practitioner.hospital_id == hospital.id)
                            .order_by(Practitioner.id)).first()
        assert doctor is not None
        schedule = service.create_schedule(
            db, hospital=hospital, department=doctor.departments[0], day=start.date(),
            session=SessionOfDay.evening, practitioner=doctor, start_time=start.time(),
            capacity=4, slot_minutes=10, now=utcnow())
        patient = identity_service.register_patient(
            db, WINDOW, name="郑秀珍", document_type=DocumentType.resident_id_card,
            document_number=number, phone="13957517701").patient
        evening_before = datetime.combine(start.date() - timedelta(days=1), time(19),
                                          tzinfo=tz)
        clerk = Principal(role=Role.window, hospital_id=hospital.id, label="窗口1")
        appt = booking.book(db, principal=clerk, patient_id=patient.id, channel=Channel.window,
                            schedule_id=schedule.id, now=evening_before)
        _row, token = identity_service.create_token(db, role=Role.kiosk,
                                                    hospital_code=hospital.code,
                                                    label="门诊大厅1号自助机")
        return token, number, appt.id


def test_kiosk_identify_check_in_and_print_the_ticket(browser: Any, live_server: str,
                                                      artifacts: Path) -> None:
    token, number, appointment_id = _session_starting_soon()
    context = browser.new_context(viewport=KIOSK_VIEW, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server + "/kiosk")
    page.get_by_label("自助机令牌").fill(token)
    page.get_by_role("button", name="启用").click()
    page.get_by_role("heading", name="请刷身份证或电子健康卡").wait_for(timeout=5000)
    page.screenshot(path=str(artifacts / "kiosk-start.png"), full_page=True)

    card = page.get_by_label("身份证 / 电子健康卡")
    card.fill("123")
    page.get_by_role("button", name="确定").click()
    assert "无法识别" in page.locator('[data-field="card"]').inner_text()
    page.get_by_label("身份证 / 电子健康卡").fill(number)  # a card reader types the same way
    page.get_by_role("button", name="确定").click()
    page.wait_for_url("**/kiosk/menu")
    assert "郑*珍" in page.locator("[data-who]").inner_text()
    page.screenshot(path=str(artifacts / "kiosk-menu.png"), full_page=True)

    page.locator('[data-action="pickup"]').click()
    page.wait_for_url("**/kiosk/appointments")
    page.screenshot(path=str(artifacts / "kiosk-appointments.png"), full_page=True)
    page.locator(f'[data-appointment="{appointment_id}"]').get_by_role(
        "button", name="报到取号").click()
    page.wait_for_url(f"**/kiosk/tickets/{appointment_id}")
    ticket = page.locator(f'[data-ticket="{appointment_id}"]')
    text = ticket.inner_text()
    assert "郑*珍" in text and "郑秀珍" not in text and number not in page.content()
    assert "报到凭条" in text and "前面0人" in text
    assert ticket.locator(".qr svg").count() == 1
    page.screenshot(path=str(artifacts / "kiosk-ticket.png"), full_page=True)
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()  # the printout is the ticket alone
    page.emulate_media(media="screen")
    with session_scope() as db:
        assert db.get_one(Appointment, appointment_id).status == "arrived"

    page.locator('[data-action="done"]').click()
    page.wait_for_url("**/kiosk")
    assert "郑" not in page.content()
    page.goto(live_server + "/kiosk/menu")  # the next person cannot go back to it
    assert "重新刷卡" in page.content() and "郑" not in page.content()
    context.close()
