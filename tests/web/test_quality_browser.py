"""The quality dashboard in a real headless Chromium (Debian's), against a live server.

It lives beside the other browser walks so that they share one Chromium and one server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role


@pytest.mark.browser
def test_quality_dashboard_in_chromium(browser: Any, live_server: str, artifacts: Path,
                                       db: Session) -> None:
    from onetrip.db import session_scope
    from onetrip.identity import service as identity_service

    with session_scope() as s:
        _row, token = identity_service.create_token(s, role=Role.regional_admin)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.goto(live_server + "/staff/sign-in?next=/quality")
    page.fill("#token", token)
    page.get_by_role("button", name="使用令牌登录").click()
    page.wait_for_url("**/quality")
    page.locator("#chart-trend canvas").wait_for(timeout=10000)
    assert "处方与费用分析" in page.get_by_role("heading", level=1).inner_text()
    assert page.locator("[data-table=region] tr").count() >= 4
    width = page.evaluate("document.querySelector('#chart-departments canvas').width")
    assert width > 100
    page.screenshot(path=str(artifacts / "quality-dashboard.png"), full_page=True)
    page.goto(live_server + "/quality/rational?hospital=sfsrmyy&period=2026-10"
              "&check=big_prescription")
    link = page.locator("[data-table=findings] a").first
    link.click()
    page.wait_for_url("**/quality/prescriptions/**")
    assert page.locator("[data-table=lines] tr").count() > 6
    page.screenshot(path=str(artifacts / "quality-prescription.png"), full_page=True)
    page.close()
