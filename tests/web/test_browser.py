"""Walks in a real headless Chromium (Debian's), against a live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_find_cardiology_by_pinyin_initials_and_see_its_doctors(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(live_server + "/")
    page.screenshot(path=str(artifacts / "home-phone.png"), full_page=True)
    page.get_by_role("searchbox", name="搜索科室或医生").fill("xnk")
    link = page.locator("[data-results=departments] a", has_text="心血管内科").first
    link.wait_for(timeout=5000)
    page.screenshot(path=str(artifacts / "search-xnk-phone.png"), full_page=True)
    link.click()
    page.wait_for_url("**/departments/xxgnk")
    assert page.get_by_role("heading", level=1).inner_text().startswith("心血管内科")
    doctors = page.locator("[data-list=practitioners] .doctor")
    assert doctors.count() >= 3
    assert "擅长" in doctors.first.inner_text()
    page.screenshot(path=str(artifacts / "department-phone.png"), full_page=True)
    page.close()


def test_search_works_without_javascript(browser: Any, live_server: str) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server + "/")
    page.get_by_role("searchbox", name="搜索科室或医生").fill("xnk")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_url("**/search?q=xnk")
    assert page.locator("[data-results=departments]").inner_text().count("心血管内科") >= 1
    context.close()
