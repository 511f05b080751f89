"""Steps several browser walks share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onetrip.db import session_scope
from tests.factories import last_sms_code


def sign_in_by_sms(page: Any, phone: str, screenshot: Path | None = None) -> None:
    """On the sign-in page: ask for a code, read it from the SMS outbox, sign in."""
    page.get_by_label("手机号码").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("验证码已发送").wait_for(timeout=5000)
    with session_scope() as db:  # the live server committed the message
        code = last_sms_code(db, phone)
    page.get_by_label("短信验证码").fill(code)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    page.get_by_role("button", name="登录", exact=True).click()


def staff_signed_in(browser: Any, server: str, target: str, viewport: dict[str, int], *,
                    token: str = "", username: str = "", password: str = "",
                    totp: str = "") -> Any:
    """A new page signed in at /staff/sign-in and sent on to ``target``: with a token, or
    with a username, password and (for admins) the TOTP code."""
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    page.goto(f"{server}/staff/sign-in?next={target}")
    if token:
        page.fill("#token", token)
        page.get_by_role("button", name="使用令牌登录").click()
    else:
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(password)
        page.get_by_label("动态口令").fill(totp)
        page.get_by_role("button", name="登录", exact=True).click()
    return page
