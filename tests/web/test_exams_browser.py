"""The exam booking centre in a real headless Chromium: waiting orders, the proposed
one-trip plan, an adjustment, booking, and the patient's timeline (EX-1, EX-2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role


@pytest.mark.browser
def test_exam_centre_books_a_one_trip_plan_in_chromium(browser: Any, live_server: str,
                                                       artifacts: Path, db: Session) -> None:
    from onetrip.db import session_scope, utcnow
    from onetrip.exams import service
    from onetrip.exams.models import ExamBooking, ExamOrder, ExamSlot
    from onetrip.identity import service as identity_service
    from onetrip.identity.service import Principal
    from onetrip.org.models import Hospital
    from tests.factories import make_patient

    with session_scope() as s:
        h = s.scalars(select(Hospital).where(Hospital.code == "sfsrmyy")).one()
        _row, token = identity_service.create_token(s, role=Role.exam_centre,
                                                    hospital_code=h.code)
        doctor = Principal(role=Role.doctor, hospital_id=h.id, label="browser")
        patient = make_patient(s)
        pid, hid = patient.id, h.id
        for code in ("gastroscopy", "us_abdomen", "blood_fasting"):
            service.place_order(s, principal=doctor, hospital_id=h.id, patient_id=pid,
                                exam_code=code, now=utcnow())
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page.goto(live_server + "/staff/sign-in?next=/exams/centre")
        page.fill("#token", token)
        page.get_by_role("button", name="使用令牌登录").click()
        page.wait_for_url("**/exams/centre")
        row = page.locator(f"[data-table=waiting] tr[data-patient='{pid}']")
        assert "胃镜" in row.inner_text()
        row.get_by_role("link", name="生成方案").click()
        page.wait_for_url(f"**/exams/centre/patients/{pid}")
        summary = page.locator("[data-summary]").inner_text()
        assert summary.startswith("1 次到院"), summary
        exams = page.locator("[data-table=plan] tr[data-exam]").evaluate_all(
            "rows => rows.map(r => r.dataset.exam)")
        assert exams.index("us_abdomen") < exams.index("gastroscopy")
        page.screenshot(path=str(artifacts / "exams-plan.png"), full_page=True)
        page.get_by_role("button", name="确认预约").click()
        page.wait_for_url(f"**/exams/patients/{pid}/itinerary?booked=1")
        kinds = page.locator("[data-list=timeline] li").evaluate_all(
            "items => items.map(i => i.dataset.kind)")
        assert kinds.count("exam") == 3 and "meal" in kinds
        assert "预约成功" in page.locator(".flash").inner_text()
        page.screenshot(path=str(artifacts / "exams-itinerary.png"), full_page=True)
        page.close()
    finally:
        with session_scope() as s:
            slot_ids = list(s.scalars(select(ExamBooking.slot_id).where(
                ExamBooking.patient_id == pid)))
            s.execute(delete(ExamBooking).where(ExamBooking.patient_id == pid))
            for sid in slot_ids:
                slot = s.get_one(ExamSlot, sid)
                slot.booked -= 1
            s.execute(delete(ExamOrder).where(ExamOrder.patient_id == pid,
                                              ExamOrder.hospital_id == hid))
