"""The patient portal walk in a real headless Chromium at a phone viewport (BK-1, BK-3, BK-6):
SMS sign-in with the code read from the outbox, register 本人 and a child (resident IDs),
hospital → department → date → doctor → time, book for the child, a double submit that books
once, my appointments, cancel; large-font mode."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from onetrip.config import get_settings
from onetrip.db import session_scope, utcnow
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Department, Hospital
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import Channel
from tests.factories import resident_id
from tests.web.walks import sign_in_by_sms

pytestmark = pytest.mark.browser

PHONE = "13957518801"
PHONE_VIEW = {"width": 390, "height": 844}


def _bookable() -> tuple[str, str, date, int]:
    """A demo session a few days ahead with web slots left, still free to cancel."""
    now = utcnow()
    today = now.astimezone(get_settings().tz).date()
    with session_scope() as db:
        for ahead in range(2, 7):
            day = today + timedelta(days=ahead)
            if org_calendar.previous_working_day(day) <= today:
                continue
            for s in db.scalars(select(Schedule).where(Schedule.day == day,
                                                       Schedule.status == "open")
                                .order_by(Schedule.id)):
                dept = db.get_one(Department, s.department_id)
                if dept.is_clinical and service.free_slots(db, schedule=s, channel=Channel.web,
                                                           now=now):
                    return db.get_one(Hospital, s.hospital_id).code, dept.code, day, s.id
    raise AssertionError("the demo data has no bookable session")


def _appointments_of(patient_id: int) -> int:
    with session_scope() as db:
        return db.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.patient_id == patient_id)) or 0


def _register(page: Any, name: str, number: str, relationship: str | None = None) -> None:
    if relationship:
        page.get_by_label("与本人关系").select_option(relationship)
    page.get_by_label("姓名").fill(name)
    page.get_by_label("证件号码").fill(number)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/me/family?flash=added")


def test_portal_sign_in_book_for_a_child_see_it_and_cancel(browser: Any, live_server: str,
                                                           artifacts: Path) -> None:
    hospital, dept, day, schedule_id = _bookable()
    context = browser.new_context(viewport=PHONE_VIEW, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server + "/me/appointments")
    page.wait_for_url("**/sign-in?next=/me/appointments")
    sign_in_by_sms(page, PHONE, screenshot=artifacts / "portal-sign-in-phone.png")
    page.wait_for_url("**/me/appointments")
    assert "还没有登记就诊人" in page.content()
    page.screenshot(path=str(artifacts / "portal-my-appointments-empty-phone.png"),
                    full_page=True)

    page.goto(live_server + "/me/family/new")
    _register(page, "严守一", resident_id(date(1985, 4, 4), seq="881"))
    page.get_by_role("link", name="添加家庭成员").click()
    # the family member is registered with a valid resident ID (children hold the number
    # from birth)
    _register(page, "严小一", resident_id(date(date.today().year - 5, 6, 1), seq="882"),
              relationship="child")

    page.get_by_role("link", name="预约挂号").first.click()
    page.wait_for_url("**/book")
    page.screenshot(path=str(artifacts / "portal-hospitals-phone.png"), full_page=True)
    card = page.locator("[data-list=hospitals]").bounding_box()
    entry = page.locator(f'[data-hospital="{hospital}"]').bounding_box()
    assert entry["x"] - card["x"] >= 8  # the names do not touch the card's border
    page.locator(f'[data-hospital="{hospital}"]').click()
    page.wait_for_url(f"**/book/hospitals/{hospital}")
    page.screenshot(path=str(artifacts / "portal-departments-phone.png"), full_page=True)
    page.locator(f'[data-dept="{dept}"]').first.click()
    page.wait_for_url(f"**/book/hospitals/{hospital}/{dept}")
    page.locator(f'[data-day="{day.isoformat()}"]').click()  # htmx swaps the doctors in
    page.wait_for_url(f"**day={day.isoformat()}")
    doctor = page.locator(f'[data-schedule="{schedule_id}"]')
    doctor.wait_for(timeout=5000)
    page.screenshot(path=str(artifacts / "portal-dates-doctors-phone.png"), full_page=True)
    doctor.click()
    page.wait_for_url(f"**/book/schedules/{schedule_id}")
    page.screenshot(path=str(artifacts / "portal-times-phone.png"), full_page=True)
    page.locator("[data-list=times] a").first.click()
    page.wait_for_url("**/book/slots/*")

    choice = page.locator("label.choice", has_text="严小一")
    child = choice.locator("input")
    child.check()
    radio, label = child.bounding_box(), choice.bounding_box()
    assert radio["width"] <= 32 and label["height"] <= 80  # a radio beside the name, one line
    kid_id = int(child.get_attribute("value"))
    token = page.locator("input[name=form_token]").get_attribute("value")
    form_url = page.url
    page.screenshot(path=str(artifacts / "portal-confirm-phone.png"), full_page=True)
    page.get_by_role("button", name="确认预约").click()
    page.wait_for_url("**/me/appointments/*?booked=1")
    assert page.get_by_role("heading", level=1).inner_text() == "预约成功"
    for fact in ("就诊时间", "就诊地点", "挂号费", "如何报到", "免费取消截止"):
        assert fact in page.content()
    page.screenshot(path=str(artifacts / "portal-booked-phone.png"), full_page=True)
    booked_path = page.url.split("?")[0]

    # The same form sent again (a double tap, a resubmit): the first booking comes back.
    again = page.request.post(form_url, form={"patient_id": str(kid_id), "form_token": token})
    assert again.ok and again.url.split("?")[0] == booked_path
    assert _appointments_of(kid_id) == 1

    page.get_by_role("link", name="我的预约").first.click()
    page.wait_for_url("**/me/appointments")
    row = page.locator("[data-list=appointments] li")
    assert row.count() == 1 and "严小一" in row.inner_text()
    page.screenshot(path=str(artifacts / "portal-my-appointments-phone.png"), full_page=True)
    row.locator("a").click()
    page.get_by_label("取消原因（选填）").fill("孩子退烧了")
    page.get_by_role("button", name="取消预约").click()
    page.get_by_text("已取消预约，号源已释放").wait_for(timeout=5000)
    page.goto(live_server + "/me/appointments?tab=cancelled")
    assert "严小一" in page.locator("[data-list=appointments]").inner_text()

    page.get_by_role("button", name="大字模式").click()
    page.wait_for_url("**/me/appointments?tab=cancelled")
    assert page.locator("html.large-font").count() == 1
    page.screenshot(path=str(artifacts / "portal-large-font-phone.png"), full_page=True)
    page.get_by_role("button", name="标准字体").click()
    page.wait_for_url("**/me/appointments?tab=cancelled")
    assert page.locator("html.large-font").count() == 0
    context.close()


def test_the_booking_walk_needs_no_javascript(browser: Any, live_server: str) -> None:
    """Sign in, register, book and see the booking with JavaScript switched off: every
    link and form works as a plain page load."""
    hospital, dept, day, schedule_id = _bookable()
    context = browser.new_context(java_script_enabled=False, viewport=PHONE_VIEW,
                                  locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server}/book/hospitals/{hospital}/{dept}")
    page.locator(f'[data-day="{day.isoformat()}"]').click()
    page.wait_for_url(f"**day={day.isoformat()}")
    page.locator(f'[data-schedule="{schedule_id}"]').click()
    page.locator("[data-list=times] a").first.click()
    page.wait_for_url("**/sign-in?next=/book/slots/*")
    slot_path = "/" + page.url.split("next=/", 1)[1]
    sign_in_by_sms(page, "13957518802")
    page.wait_for_url(f"**{slot_path}")
    page.get_by_role("link", name="登记就诊人").click()
    _register(page, "甘雨", resident_id(date(1990, 3, 3), seq="883"))
    page.goto(live_server + slot_path)
    page.get_by_role("button", name="确认预约").click()
    page.wait_for_url("**/me/appointments/*?booked=1")
    assert page.get_by_role("heading", level=1).inner_text() == "预约成功"
    page.get_by_role("link", name="我的预约").first.click()
    assert "甘雨" in page.locator("[data-list=appointments]").inner_text()
    context.close()


def test_htmx_requests_show_the_loading_bar_while_they_run(browser: Any,
                                                           live_server: str) -> None:
    hospital, dept, day, _schedule_id = _bookable()
    page = browser.new_page(viewport=PHONE_VIEW, locale="zh-CN")
    page.goto(f"{live_server}/book/hospitals/{hospital}/{dept}")
    held: list[Any] = []
    page.route(f"**/book/hospitals/{hospital}/{dept}?day={day.isoformat()}",
               lambda route: held.append(route))
    page.locator(f'[data-day="{day.isoformat()}"]').click()  # htmx swaps the doctors in
    # the bar fades in (opacity .2s) while the answer is held back
    page.wait_for_function("(() => { const bar = document.getElementById('loading');"
                           " return bar.classList.contains('htmx-request')"
                           " && parseFloat(getComputedStyle(bar).opacity) > 0.9; })()",
                           timeout=5000)
    held[0].continue_()
    page.wait_for_function("!document.getElementById('loading')"
                           ".classList.contains('htmx-request')", timeout=5000)
    page.close()
