"""The staff console in a real headless Chromium, on a server whose clock is pinned.

Walks: a clerk books a window slot for a patient and checks them in (BK-5); an admin
imports an Excel sheet with a bad row, reads the error report, then imports a good one; a
clerk stops a clinic and sees every affected patient with their offer (BK-6); a doctor
calls the next patient (BK-11); an admin's pool policy is refused beside each broken floor
(BK-2, BK-4). Screens at 1440×900 go to tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onetrip.config import get_settings
from onetrip.db import session_scope, utcnow
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Hospital, Practitioner
from onetrip.scheduling import booking, queue, service
from onetrip.scheduling.rules import Channel, SessionOfDay, at_local
from onetrip.scheduling.templates import column_title
from tests.factories import make_patient, resident_id
from tests.scheduling.test_templates import sheet_with
from tests.web.conftest import serve_at
from tests.web.walks import staff_signed_in

pytestmark = pytest.mark.browser

DAY = date(2027, 3, 1)  # a Monday, far from the demo's own fortnight
DESK = {"width": 1440, "height": 900}


def local(day: date, hour: int, minute: int = 0) -> Any:
    return at_local(day, time(hour, minute), get_settings().tz)


NOW = local(DAY, 9, 0)


@dataclass
class Scene:
    hospital: str
    desk_schedule: int
    desk_number: str
    stop_schedule: int
    stopped_patients: list[int]
    queue_schedule: int
    queued: list[int]
    doctor_code: str
    doctor_name: str
    department: str


def _doctors(db: Any, hospital: Hospital) -> tuple[Any, list[Practitioner]]:
    """A department of the demo hospital with at least three expert doctors."""
    for dept in org_service.list_departments(db, hospital):
        experts = [p for p in org_service.list_practitioners(db, hospital=hospital,
                                                             department=dept)
                   if p.service_level == "expert"]
        if len(experts) >= 3:
            return dept, experts
    raise AssertionError("the demo hospital has no department with three experts")


@pytest.fixture(scope="module")
def scene(database_url: str) -> Scene:
    with session_scope() as db:
        h = org_service.access_hospital(db, "sfsrmyy")
        dept, (a, b, c, *_) = _doctors(db, h)

        def session(doc: Practitioner, day: date, start: time, capacity: int) -> Any:
            return service.create_schedule(db, hospital=h, department=dept, day=day,
                                           session=SessionOfDay.am, practitioner=doc,
                                           start_time=start, capacity=capacity,
                                           slot_minutes=6, now=local(DAY - timedelta(days=30),
                                                                     8))

        desk = session(a, DAY, time(10, 0), 10)
        queued_session = session(b, DAY, time(9, 0), 10)
        stop = session(a, DAY + timedelta(days=1), time(8, 0), 10)
        session(c, DAY + timedelta(days=2), time(8, 0), 1)  # one equivalent slot to offer
        number = resident_id(date(1950, 1, 1))
        make_patient(db, name="欧阳秀英", document_number=number)
        window = Principal(role=Role.window, hospital_id=h.id, label="测试窗口")
        stopped, queued = [], []
        for i in range(2):
            p = make_patient(db, name=["东方明", "司马兰"][i])
            stopped.append(p.id)
            booking.book(db, principal=window, patient_id=p.id, channel=Channel.phone,
                         schedule_id=stop.id, now=NOW - timedelta(days=3))
        for i in range(2):
            p = make_patient(db, name=["诸葛亮平", "上官婉"][i])
            appt = booking.book(db, principal=window, patient_id=p.id, channel=Channel.phone,
                                schedule_id=queued_session.id, now=NOW - timedelta(days=3))
            queue.check_in(db, principal=window, appointment_id=appt.id, patient_id=p.id,
                           now=NOW - timedelta(minutes=30 - i))
            queued.append(appt.id)
        return Scene("sfsrmyy", desk.id, number, stop.id, stopped, queued_session.id, queued,
                     a.code, a.name, dept.name)


@pytest.fixture(scope="module")
def console_server(database_url: str) -> Iterator[str]:
    with serve_at(NOW) as url:
        yield url


def _signed_in(browser: Any, server: str, role: Role, target: str) -> Any:
    with session_scope() as db:
        _row, token = identity_service.create_token(db, role=role, hospital_code="sfsrmyy")
    page = staff_signed_in(browser, server, target, DESK, token=token)
    page.wait_for_url(f"**{target}")
    return page


def test_clerk_books_a_window_slot_for_a_patient_and_checks_them_in(
        browser: Any, console_server: str, scene: Scene, artifacts: Path) -> None:
    page = _signed_in(browser, console_server, Role.window, "/console/window")
    with page.expect_response("**/console/window/find") as answer:
        page.get_by_role("button", name="查找就诊人").click()  # nothing typed yet
    assert answer.value.status == 422  # a real 422, still swapped in beside the field
    page.locator('#patient-find [data-field="document_number"]').wait_for(timeout=5000)
    page.get_by_label("证件号码").fill(scene.desk_number)
    page.get_by_role("button", name="查找就诊人").click()
    found = page.locator("[data-list=found] li")
    found.first.wait_for(timeout=5000)
    assert found.count() == 1 and scene.desk_number not in page.content()
    page.screenshot(path=str(artifacts / "console-window-find.png"), full_page=True)
    found.first.get_by_role("link", name="为其挂号").click()
    page.wait_for_url("**patient=*")
    page.locator(f'tr[data-schedule="{scene.desk_schedule}"] a').click()
    page.locator("[data-list=slots]").wait_for()
    page.screenshot(path=str(artifacts / "console-window-slots.png"), full_page=True)
    page.locator('button.slot[data-pool="window"]').first.click()
    page.get_by_text("预约成功").wait_for(timeout=5000)
    assert scene.doctor_name in page.locator(".console-confirm").inner_text()
    page.get_by_role("button", name="报到").click()
    page.locator("main > .flash.ok").wait_for(timeout=5000)
    assert "已报到" in page.locator("main > .flash.ok").inner_text()
    assert page.locator('[data-list=appointments] li[data-status="arrived"]').count() == 1
    page.screenshot(path=str(artifacts / "console-window-checked-in.png"), full_page=True)
    page.close()


def _sheet(rows: list[list[object]]) -> bytes:
    return sheet_with([column_title(1, SessionOfDay.am), column_title(4, SessionOfDay.pm)],
                      *rows)


def test_admin_imports_a_sheet_with_a_bad_row_then_a_good_one(
        browser: Any, console_server: str, scene: Scene, artifacts: Path,
        tmp_path: Path) -> None:
    bad = tmp_path / "排班-有误.xlsx"
    bad.write_bytes(_sheet([[scene.department, scene.doctor_code, scene.doctor_name, "专家门诊",
                             "", "20", ""],
                            [scene.department, "x9999", "", "", "", "二十", ""]]))
    good = tmp_path / "排班.xlsx"
    good.write_bytes(_sheet([[scene.department, scene.doctor_code, scene.doctor_name,
                              "专家门诊", "", "20", "16/10"]]))
    page = _signed_in(browser, console_server, Role.hospital_admin, "/console/templates")
    page.set_input_files("#file", str(bad))
    page.get_by_role("button", name="上传并检查").click()
    report = page.locator("[data-report=sheet]")
    report.wait_for(timeout=5000)
    assert page.locator('[data-list=sheet-errors] tr[data-line="3"]').count() == 2
    assert "x9999" in report.inner_text() and "二十" in report.inner_text()
    page.screenshot(path=str(artifacts / "console-import-errors.png"), full_page=True)
    page.set_input_files("#file", str(good))
    page.get_by_role("button", name="上传并检查").click()
    page.get_by_text("已导入2个出诊时段").wait_for(timeout=5000)
    rows = page.locator("[data-list=templates] tr", has_text=scene.doctor_name)
    assert rows.count() == 2
    page.screenshot(path=str(artifacts / "console-templates.png"), full_page=True)
    page.close()


def test_clerk_stops_a_clinic_and_sees_the_affected_patients_with_their_offers(
        browser: Any, console_server: str, scene: Scene, artifacts: Path) -> None:
    """A doctor calls in sick at 7:30: the window clerk stops the clinic (BK-6)."""
    day = (DAY + timedelta(days=1)).isoformat()
    page = _signed_in(browser, console_server, Role.window, f"/console/sessions?day={day}")
    page.screenshot(path=str(artifacts / "console-sessions.png"), full_page=True)
    page.locator(f'tr[data-schedule="{scene.stop_schedule}"] a').click()
    page.get_by_role("button", name="确认停诊并通知患者").click()
    page.locator('[data-field="reason"]').wait_for(timeout=5000)  # a reason is required
    page.get_by_label("停诊原因").fill("专家外出会诊")
    page.get_by_role("button", name="确认停诊并通知患者").click()
    offers = page.locator("[data-list=offers] tr[data-offer]")
    offers.first.wait_for(timeout=5000)
    assert offers.count() == len(scene.stopped_patients)
    text = page.locator("[data-list=offers]").inner_text()
    assert "东方明" in text and "司马兰" in text
    assert "已保留至" in text and "无同级别号源" in text
    page.screenshot(path=str(artifacts / "console-stop-clinic.png"), full_page=True)
    page.close()


def test_doctor_calls_the_next_patient(browser: Any, console_server: str, scene: Scene,
                                       artifacts: Path) -> None:
    page = _signed_in(browser, console_server, Role.doctor, "/console/queue")
    page.locator(f'tr[data-schedule="{scene.queue_schedule}"] a').click()
    page.locator("[data-list=queue]").wait_for(timeout=5000)
    assert page.locator("[data-list=queue] li").count() == 2
    page.get_by_role("button", name="叫下一位").click()
    page.locator(f'[data-current="{scene.queued[0]}"]').wait_for(timeout=5000)
    assert "诸葛亮平" in page.locator(".console-now").inner_text()
    assert page.locator("[data-list=queue] li").count() == 1
    page.screenshot(path=str(artifacts / "console-queue.png"), full_page=True)
    page.close()
    with session_scope() as db:
        called = db.scalar(select(queue.Appointment.called_at).where(
            queue.Appointment.id == scene.queued[0]))
        assert called is not None


def test_admin_pool_policy_is_refused_beside_each_broken_floor_and_nothing_is_saved(
        browser: Any, console_server: str, scene: Scene, artifacts: Path) -> None:
    page = _signed_in(browser, console_server, Role.hospital_admin, "/console")
    page.screenshot(path=str(artifacts / "console-home.png"), full_page=True)
    page.get_by_role("link", name="号池设置").first.click()
    page.wait_for_url("**/console/policy")
    page.get_by_label("线上号源（含转诊）占比").fill("70")
    page.get_by_label("转诊预留占线上号源").fill("30")
    page.get_by_role("button", name="保存").click()
    page.locator('[data-field="referral_share_of_online"]').wait_for(timeout=5000)
    assert "80%" in page.locator('[data-field="online_share"]').inner_text()
    assert "40%" in page.locator('[data-field="referral_share_of_online"]').inner_text()
    assert page.get_by_label("线上号源（含转诊）占比").input_value() == "70"
    page.screenshot(path=str(artifacts / "console-policy-refused.png"), full_page=True)
    page.close()
    with session_scope() as db:
        policy, _rule = service.policy_for(db, org_service.access_hospital(db, scene.hospital).id)
        assert (policy.online_share, policy.referral_share_of_online) != (0.7, 0.3)
        assert policy.online_share >= 0.8 and policy.referral_share_of_online >= 0.4


def test_the_window_desk_works_without_javascript(browser: Any, console_server: str,
                                                  scene: Scene) -> None:
    number = resident_id(date(1944, 4, 4))
    with session_scope() as db:
        make_patient(db, name="慕容秋", document_number=number)
        _row, token = identity_service.create_token(db, role=Role.window,
                                                    hospital_code=scene.hospital)
    context = browser.new_context(java_script_enabled=False, viewport=DESK, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{console_server}/staff/sign-in?next=/console/window")
    page.fill("#token", token)
    page.get_by_role("button", name="使用令牌登录").click()
    page.wait_for_url("**/console/window")
    page.get_by_label("证件号码").fill(number)
    page.get_by_role("button", name="查找就诊人").click()
    page.locator("[data-list=found] li").get_by_role("link", name="为其挂号").click()
    page.locator(f'tr[data-schedule="{scene.desk_schedule}"] a').click()
    page.locator("[data-list=slots] button.slot").first.click()  # the window one is gone
    page.get_by_text("预约成功").wait_for(timeout=5000)
    assert "慕容秋" in page.content() and number not in page.content()
    context.close()


def test_a_hospital_short_of_kiosks_is_marked_in_red(browser: Any, console_server: str,
                                                     artifacts: Path) -> None:
    """BK-10 on the indicators page: the demo's second-level hospital has one kiosk for
    about 90,000 visits a year; its cell, and the region's, read 不足 in the alert colour,
    as an online share under 80% does (BK-2)."""
    today = utcnow().astimezone(get_settings().tz).date()
    target = (f"/console/indicators?from={today - timedelta(days=7)}"
              f"&to={today - timedelta(days=1)}")
    with session_scope() as db:
        _row, token = identity_service.create_token(db, role=Role.regulator)
    page = staff_signed_in(browser, console_server, "/console/indicators", DESK, token=token)
    page.wait_for_url("**/console/indicators")
    page.goto(console_server + target)
    short = page.locator("td[data-kiosks].bad")
    assert short.count() >= 2 and "不足" in short.first.inner_text()
    assert page.locator('tr[data-hospital="sfsdery"] td[data-kiosks].bad').count() == 1
    colours = {short.nth(i).evaluate("e => getComputedStyle(e).color")
               for i in range(short.count())}
    met = page.locator("td[data-kiosks]:not(.bad)").first.evaluate(
        "e => getComputedStyle(e).color")
    assert colours == {"rgb(180, 35, 24)"} and met != "rgb(180, 35, 24)"
    page.screenshot(path=str(artifacts / "console-indicators.png"), full_page=True)
    page.close()
