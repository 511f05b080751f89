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
from tests.web.conftest import serve_at

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


REGISTER_DAY = date(2027, 3, 8)  # a Monday away from the demo's fortnight and other walks


def _tcm_session_of_the_day() -> tuple[str, str, str, int]:
    """At the TCM hospital (one kiosk layout for every hospital): a kiosk token, a patient's
    number, a department and a morning session whose window slots open at 07:00."""
    tz = get_settings().tz
    number = resident_id(date(1952, 2, 2), seq="772")
    with session_scope() as db:
        hospital = db.scalars(select(Hospital).where(Hospital.code == "sfszyy")).one()
        doctor = db.scalars(select(Practitioner).where(Practitioner.hospital_id == hospital.id)
                            .order_by(Practitioner.id)).first()
        assert doctor is not None
        department = doctor.departments[0]
        schedule = service.create_schedule(
            db, hospital=hospital, department=department, day=REGISTER_DAY,
            session=SessionOfDay.am, practitioner=doctor, start_time=time(8), capacity=8,
            slot_minutes=10, now=datetime.combine(REGISTER_DAY - timedelta(days=30), time(9),
                                                  tzinfo=tz))
        identity_service.register_patient(
            db, WINDOW, name="钱桂兰", document_type=DocumentType.resident_id_card,
            document_number=number, phone="13957517702")
        _row, token = identity_service.create_token(db, role=Role.kiosk,
                                                    hospital_code=hospital.code,
                                                    label="中医院门诊大厅自助机")
        return token, number, department.code, schedule.id


def test_kiosk_same_day_registration_prints_a_ticket_with_the_patient_checked_in(
        browser: Any, artifacts: Path) -> None:
    token, number, department, schedule_id = _tcm_session_of_the_day()
    now = datetime.combine(REGISTER_DAY, time(7, 30), tzinfo=get_settings().tz)
    with serve_at(now) as server:
        context = browser.new_context(viewport=KIOSK_VIEW, locale="zh-CN")
        page = context.new_page()
        page.goto(server + "/kiosk")
        page.get_by_label("自助机令牌").fill(token)
        page.get_by_role("button", name="启用").click()
        assert "示范市中医院" in page.locator("header.top").inner_text()
        page.get_by_label("身份证 / 电子健康卡").fill(number)
        page.get_by_role("button", name="确定").click()
        page.locator('[data-action="register"]').click()
        page.wait_for_url("**/kiosk/register")
        page.screenshot(path=str(artifacts / "kiosk-register.png"), full_page=True)
        page.locator(f'[data-dept="{department}"]').click()
        page.locator(f'[data-schedule="{schedule_id}"]').click()
        page.wait_for_url(f"**/kiosk/schedules/{schedule_id}")
        times = page.locator("[data-list=times] a")
        assert times.count() >= 1 and times.first.bounding_box()["height"] >= 88
        page.screenshot(path=str(artifacts / "kiosk-times.png"), full_page=True)
        times.first.click()
        page.wait_for_url("**/kiosk/slots/*")
        page.screenshot(path=str(artifacts / "kiosk-confirm.png"), full_page=True)
        page.get_by_role("button", name="确认挂号并报到").click()
        page.wait_for_url("**/kiosk/tickets/*")
        ticket = page.locator("[data-ticket]")
        text = ticket.inner_text()
        assert "钱*兰" in text and "钱桂兰" not in text and number not in page.content()
        assert "报到凭条" in text and ticket.locator(".qr svg").count() == 1
        page.screenshot(path=str(artifacts / "kiosk-registered-ticket.png"), full_page=True)
        context.close()
    with session_scope() as db:
        appt = db.scalars(select(Appointment).where(
            Appointment.schedule_id == schedule_id)).one()
        assert (appt.channel, appt.status) == ("kiosk", "arrived")
