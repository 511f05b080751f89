"""Kiosk exam booking in a real headless Chromium at a portrait kiosk screen (EX-1): the
patient swipes (types) a resident ID, opens 检查预约, sees the waiting exams (a sedated one
sent to the centre), books the ultrasound at the proposed time, and reads and prints its
preparation."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from onetrip.db import session_scope, utcnow
from onetrip.exams import service
from onetrip.exams.models import ExamBooking, ExamOrder, ExamSlot
from onetrip.identity import service as identity_service
from onetrip.identity.rules import DocumentType, Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from tests.factories import WINDOW, resident_id

pytestmark = pytest.mark.browser

KIOSK_VIEW = {"width": 1080, "height": 1920}


def _patient_with_orders() -> tuple[str, str, int, int, int]:
    """A kiosk token of the demo hospital, a patient's number, their thyroid ultrasound and
    gastroscopy orders, and the patient's id."""
    number = resident_id(date(1968, 4, 12), seq="552")
    with session_scope() as db:
        h = db.scalars(select(Hospital).where(Hospital.code == "sfsrmyy")).one()
        patient = identity_service.register_patient(
            db, WINDOW, name="钱海燕", document_type=DocumentType.resident_id_card,
            document_number=number, phone="13957517702").patient
        doctor = Principal(role=Role.doctor, hospital_id=h.id, label="诊室")
        us, gastro = (service.place_order(db, principal=doctor, hospital_id=h.id,
                                          patient_id=patient.id, exam_code=code,
                                          now=utcnow()).id
                      for code in ("us_thyroid", "gastroscopy"))
        _row, token = identity_service.create_token(db, role=Role.kiosk, hospital_code=h.code,
                                                    label="门诊大厅2号自助机")
        return token, number, us, gastro, patient.id


def test_kiosk_books_a_single_exam_and_prints_its_preparation(
        browser: Any, live_server: str, artifacts: Path) -> None:
    token, number, us, gastro, pid = _patient_with_orders()
    context = browser.new_context(viewport=KIOSK_VIEW, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(live_server + "/kiosk")
        page.get_by_label("自助机令牌").fill(token)
        page.get_by_role("button", name="启用").click()
        page.get_by_label("身份证 / 电子健康卡").fill(number)
        page.get_by_role("button", name="确定").click()
        page.wait_for_url("**/kiosk/menu")
        page.locator('[data-action="exams"]').click()
        page.wait_for_url("**/kiosk/exams")
        assert page.locator(f'[data-order="{gastro}"] [data-centre]').is_visible()
        assert page.locator(f'[data-order="{gastro}"] a').count() == 0
        page.screenshot(path=str(artifacts / "kiosk-exams.png"), full_page=True)

        page.locator(f'[data-order="{us}"]').get_by_role("link", name="预约时间").click()
        page.wait_for_url(f"**/kiosk/exams/orders/{us}")
        assert "低领上衣" in page.locator("[data-instruction]").inner_text()
        assert page.locator("[data-list=exam-slots] a").count() > 1
        page.screenshot(path=str(artifacts / "kiosk-exam-slots.png"), full_page=True)
        page.locator("[data-list=exam-slots] a").first.click()
        page.wait_for_url(f"**/kiosk/exams/orders/{us}/slots/*")
        assert "低领上衣" in page.locator("[data-instruction]").inner_text()
        page.screenshot(path=str(artifacts / "kiosk-exam-confirm.png"), full_page=True)
        page.get_by_role("link", name="返回").click()
        page.wait_for_url(f"**/kiosk/exams/orders/{us}")
        page.get_by_role("button", name="确认预约建议时间").click()
        page.wait_for_url("**/kiosk/exams/bookings/*")
        slip = page.locator("[data-exam-slip]")
        text = slip.inner_text()
        assert "甲状腺超声" in text and "低领上衣" in text
        assert "钱*燕" in text and "钱海燕" not in page.content() and number not in page.content()
        assert slip.locator(".qr svg").count() == 1
        page.screenshot(path=str(artifacts / "kiosk-exam-slip.png"), full_page=True)
        page.emulate_media(media="print")
        assert page.locator("header.top").is_hidden()  # the printout is the slip alone
        page.emulate_media(media="screen")
        with session_scope() as db:
            (b,) = db.scalars(select(ExamBooking).where(ExamBooking.patient_id == pid))
            assert b.channel == "kiosk" and b.order_id == us
        page.locator('[data-action="done"]').click()
        page.wait_for_url("**/kiosk")
        assert "钱" not in page.content()
    finally:
        context.close()
        with session_scope() as db:
            for b in db.scalars(select(ExamBooking).where(ExamBooking.patient_id == pid)):
                db.get_one(ExamSlot, b.slot_id).booked -= 1
            db.execute(delete(ExamBooking).where(ExamBooking.patient_id == pid))
            db.execute(delete(ExamOrder).where(ExamOrder.patient_id == pid))
