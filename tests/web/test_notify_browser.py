"""The inbox (on a phone) and the staff outbox with resend, in a real headless Chromium."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from onetrip.db import session_scope
from onetrip.identity import service as identity_service
from onetrip.identity.principal import Principal
from onetrip.identity.rules import Relationship, Role
from onetrip.notify import channels, service
from onetrip.notify.channels import Outgoing, PermanentFailure
from onetrip.notify.models import Notification
from onetrip.scheduling import booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import (
    last_sms_code,
    make_account,
    make_department,
    make_hospital,
    make_patient,
    make_practitioner,
)
from tests.scheduling.conftest import CREATED, DAY, OPEN

pytestmark = pytest.mark.browser

PHONE = "13957519876"


@dataclass
class Seeded:
    hospital_code: str
    failed_id: int
    token: str


def _refuse(_db: Any, msg: Outgoing) -> str:
    raise PermanentFailure("HTTP 200 isv.MOBILE_NUMBER_ILLEGAL refused")


@pytest.fixture(scope="module")
def seeded(live_server: str) -> Seeded:
    """A family of two with a sent confirmation each and one refused reminder, committed."""
    with session_scope() as db:
        h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
        dept = make_department(db, h, name="消化内科")
        doc = make_practitioner(db, h, dept, service_level="expert", title="chief_physician")
        schedule = scheduling_service.create_schedule(
            db, hospital=h, department=dept, day=DAY, session=SessionOfDay.pm,
            practitioner=doc, capacity=10, slot_minutes=6, now=CREATED)
        account = make_account(db, phone=PHONE)
        me = make_patient(db, principal=account, name="孙丽", phone=PHONE)
        child = make_patient(db, principal=account, name="孙小乐",
                             relationship=Relationship.child, birth_date=DAY.replace(year=2017))
        ids = []
        for p in (me, child):
            ids.append(booking.book(db, principal=Principal(
                role=Role.patient, account_id=p.id, patient_ids=frozenset({p.id})),
                patient_id=p.id, channel=Channel.app, schedule_id=schedule.id, now=OPEN).id)
        code = h.code
    with session_scope() as db:
        rows = list(db.scalars(select(Notification).where(Notification.appointment_id.in_(ids))))
        for row in rows:
            if row.template == "booking_confirmed":
                service.deliver(db, row, now=OPEN)
        failed = next(r for r in rows if r.template == "day_before")
        saved = channels.CHANNELS["console"]
        channels.CHANNELS["console"] = _refuse
        try:
            service.deliver(db, failed, now=failed.send_at)
        finally:
            channels.CHANNELS["console"] = saved
        _row, token = identity_service.create_token(db, role=Role.window, hospital_code=code)
        return Seeded(code, failed.id, token)


def test_rm1_a_patient_reads_the_familys_messages_on_a_phone(
        browser: Any, live_server: str, artifacts: Path, seeded: Seeded) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(live_server + "/me/inbox")
    page.wait_for_url("**/sign-in?next=/me/inbox")
    page.get_by_label("手机号码").fill(PHONE)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("验证码已发送").wait_for(timeout=5000)
    with session_scope() as db:
        code = last_sms_code(db, PHONE)
    page.get_by_label("短信验证码").fill(code)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**/me/inbox")
    items = page.locator("[data-list=inbox] li[data-id]")
    assert items.count() == 2
    text = page.locator("[data-list=inbox]").inner_text()
    assert "本人 孙丽" in text and "子女 孙小乐" in text and "消化内科" in text
    assert page.locator("[data-unread]").inner_text() == "2条未读"
    page.screenshot(path=str(artifacts / "notify-inbox-phone.png"), full_page=True)
    items.first.get_by_role("button", name="标为已读").click()
    page.wait_for_url("**/me/inbox")
    assert page.locator("[data-unread]").inner_text() == "1条未读"
    assert page.locator("li[data-read=yes]").count() == 1
    page.get_by_role("button", name="全部标为已读").click()
    page.wait_for_url("**/me/inbox")
    assert page.locator("[data-unread]").count() == 0
    assert PHONE not in page.content()
    page.close()


def test_rm1_staff_find_a_failed_message_and_resend_it_once(
        browser: Any, live_server: str, artifacts: Path, seeded: Seeded) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.goto(live_server + "/staff/sign-in?next=/staff/notifications")
    page.fill("#token", seeded.token)
    page.get_by_role("button", name="使用令牌登录").click()
    page.wait_for_url("**/staff/notifications")
    assert page.locator("[data-list=outbox] tr[data-id]").count() == 6
    page.get_by_label("状态").select_option("failed")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url("**status=failed**")
    row = page.locator(f"tr[data-id='{seeded.failed_id}']")
    assert page.locator("[data-list=outbox] tr[data-id]").count() == 1
    assert "isv.MOBILE_NUMBER_ILLEGAL" in row.locator("[data-error]").inner_text()
    assert "139****9876" in row.inner_text() and PHONE not in page.content()
    page.screenshot(path=str(artifacts / "notify-outbox-failed.png"), full_page=True)
    row.get_by_role("button", name="重发").click()
    page.wait_for_url("**flash=resent**")
    assert "已重新排队发送" in page.locator(".flash").inner_text()
    assert page.locator("[data-list=outbox] tr[data-id]").count() == 0  # no longer failed
    with session_scope() as db:
        resent = db.get_one(Notification, seeded.failed_id)
        assert resent.status == "queued" and resent.resends == 1
        assert db.scalar(select(func.count()).select_from(Notification).where(
            Notification.dedupe_key == resent.dedupe_key)) == 1
    page.goto(live_server + "/staff/notifications?status=queued")
    assert "已重发1次" in page.locator(f"tr[data-id='{seeded.failed_id}']").inner_text()
    page.close()
