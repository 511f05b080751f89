"""The patient walk in a real headless Chromium: SMS sign-in, register 本人, add a child."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.factories import resident_id
from tests.web.walks import sign_in_by_sms

pytestmark = pytest.mark.browser

PHONE = "13957511234"


def test_sms_sign_in_and_add_a_family_member_on_a_phone(browser: Any, live_server: str,
                                                        artifacts: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(live_server + "/me/family")
    page.wait_for_url("**/sign-in?next=/me/family")
    page.get_by_label("手机号码").fill("12345")
    with page.expect_response("**/sign-in") as answer:
        page.get_by_role("button", name="获取验证码").click()
    assert answer.value.status == 422  # swapped into the status line, not a page reload
    assert "有效的手机号码" in page.locator('#phone-status [data-field="phone"]').inner_text()
    sign_in_by_sms(page, PHONE, screenshot=artifacts / "identity-sms-sign-in-phone.png")
    page.wait_for_url("**/me/family")
    page.get_by_role("link", name="登记本人信息").click()

    number = resident_id(date(1987, 7, 7), seq="345")
    page.get_by_label("姓名").fill("卫东")
    page.get_by_label("证件号码").fill(number[:-1] + ("0" if number[-1] != "0" else "1"))
    page.get_by_role("button", name="保存").click()
    error = page.locator('[data-field="document_number"]')
    error.wait_for(timeout=5000)
    assert "校验位不正确" in error.inner_text()
    page.screenshot(path=str(artifacts / "identity-register-error-phone.png"), full_page=True)
    page.get_by_label("证件号码").fill(number)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/me/family?flash=added")

    page.get_by_role("link", name="添加家庭成员").click()
    page.get_by_label("与本人关系").select_option("child")
    page.get_by_label("姓名").fill("卫小东")
    page.get_by_label("证件类型").select_option("household_register")
    page.get_by_label("证件号码").fill(resident_id(date(date.today().year - 6, 2, 2)))
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/me/family?flash=added")
    members = page.locator("[data-list=family] .member")
    assert members.count() == 2
    text = page.locator("[data-list=family]").inner_text()
    assert "卫东" in text and "卫小东" in text and "子女" in text and number not in text
    assert "139****1234" in page.content()
    page.screenshot(path=str(artifacts / "identity-my-family-phone.png"), full_page=True)
    page.close()
