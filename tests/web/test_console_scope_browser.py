"""The demo's department admin and linked doctor in a real headless Chromium, on a server
whose clock is pinned to a day far from the demo's fortnight.

Walks: demo-dadmin (科室管理员 of 心血管内科, password + TOTP) sees only its department's
sessions and templates, stops one of its clinics and sees every affected patient with the
offer (BK-6); demo-doctor, linked to practitioner d0001, signs in and lands straight in
that doctor's consulting room and calls the next patient (BK-11); the hospital admin sees
the link on the staff accounts page. Screens at 1440×900 go to tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from onetrip.db import session_scope
from onetrip.demo import DEFAULT_SEED
from onetrip.identity.demo import DEMO_DEPARTMENT, DEMO_PRACTITIONER_CODE, demo_staff
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking, queue, service
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import make_patient
from tests.web.conftest import serve_at
from tests.web.test_console_browser import DESK, local
from tests.web.walks import staff_signed_in

pytestmark = pytest.mark.browser

DAY = date(2027, 4, 12)  # a Monday, far from the demo's fortnight and the other walks' days
NOW = local(DAY, 9, 0)


@dataclass
class Scene:
    stop_schedule: int
    other_schedule: int
    stopped: list[str]
    own_schedule: int
    queued: list[int]


def _session(db: Any, h: Hospital, dept: Department, doc: Practitioner, day: date,
             start: time, capacity: int, level: str = "specialist") -> Any:
    session = SessionOfDay.am if start.hour < 12 else SessionOfDay.pm
    return service.create_schedule(db, hospital=h, department=dept, day=day,
                                   session=session, practitioner=doc, start_time=start,
                                   capacity=capacity, slot_minutes=10, service_level=level,
                                   now=local(DAY - timedelta(days=30), 8))


@pytest.fixture(scope="module")
def scene(database_url: str) -> Scene:
    with session_scope() as db:
        h = org_service.access_hospital(db, "sfsrmyy")
        cardio = org_service.access_department(db, h, DEMO_DEPARTMENT[0])
        mine = org_service.access_practitioner(db, h, DEMO_PRACTITIONER_CODE)
        a, b = [p for p in org_service.list_practitioners(db, hospital=h, department=cardio)
                if p.id != mine.id][:2]
        other = next(d for d in org_service.list_departments(db, h)
                     if d.is_clinical and d.id != cardio.id)
        stop = _session(db, h, cardio, a, DAY, time(14, 0), 6)
        _session(db, h, cardio, b, DAY + timedelta(days=1), time(8, 0), 1)  # one to offer
        theirs = _session(db, h, other, other.practitioners[0], DAY, time(8, 0), 6)
        own = _session(db, h, cardio, mine, DAY, time(8, 30), 6, "general")  # not offered
        window = Principal(role=Role.window, hospital_id=h.id, label="测试窗口")
        names = ["慕容雪", "皇甫云"]
        for name in names:
            p = make_patient(db, name=name)
            booking.book(db, principal=window, patient_id=p.id, channel=Channel.phone,
                         schedule_id=stop.id, now=NOW - timedelta(days=3))
        queued = []
        for i, name in enumerate(["端木青", "欧阳川"]):
            p = make_patient(db, name=name)
            appt = booking.book(db, principal=window, patient_id=p.id, channel=Channel.phone,
                                schedule_id=own.id, now=NOW - timedelta(days=3))
            queue.check_in(db, principal=window, appointment_id=appt.id, patient_id=p.id,
                           now=NOW - timedelta(minutes=40 - i))
            queued.append(appt.id)
        return Scene(stop.id, theirs.id, names, own.id, queued)


@pytest.fixture(scope="module")
def scope_server(database_url: str) -> Iterator[str]:
    with serve_at(NOW) as url:
        yield url


def _demo_account(role: Role) -> Any:
    return next(s for s in demo_staff(DEFAULT_SEED) if s.role is role)


def _sign_in(browser: Any, server: str, role: Role, target: str) -> Any:
    """Sign in with the demo account of ``role`` as printed by ``onetrip demo``."""
    account = _demo_account(role)
    totp = pyotp.TOTP(account.totp_secret).now() if account.totp_secret else ""
    return staff_signed_in(browser, server, target, DESK, username=account.username,
                           password=account.password, totp=totp)


def test_department_admin_sees_only_its_department_and_stops_one_of_its_clinics(
        browser: Any, scope_server: str, scene: Scene, artifacts: Path) -> None:
    page = _sign_in(browser, scope_server, Role.department_admin,
                    f"/console/sessions?day={DAY.isoformat()}")
    page.wait_for_url("**/console/sessions?day=*")
    assert DEMO_DEPARTMENT[1] in page.locator("[data-scope-department]").inner_text()
    rows = page.locator("[data-list=sessions] tbody tr")
    assert rows.count() >= 2  # its own two sessions of the day
    assert page.locator(f'tr[data-schedule="{scene.other_schedule}"]').count() == 0
    for text in rows.all_inner_texts():
        assert DEMO_DEPARTMENT[1] in text
    page.screenshot(path=str(artifacts / "console-dadmin-sessions.png"), full_page=True)

    page.locator(f'tr[data-schedule="{scene.stop_schedule}"] a').click()
    page.get_by_label("停诊原因").fill("科室集体外出义诊")
    page.get_by_role("button", name="确认停诊并通知患者").click()
    offers = page.locator("[data-list=offers] tr[data-offer]")
    offers.first.wait_for(timeout=5000)
    text = page.locator("[data-list=offers]").inner_text()
    assert offers.count() == 2 and all(name in text for name in scene.stopped)
    assert "已保留至" in text and "无同级别号源" in text
    page.screenshot(path=str(artifacts / "console-dadmin-stop.png"), full_page=True)

    page.goto(f"{scope_server}/console/templates")
    cells = page.locator("[data-list=templates] tbody tr td:first-child").all_inner_texts()
    assert cells and set(cells) == {DEMO_DEPARTMENT[1]}
    assert page.get_by_role("link", name="号池设置").count() == 0
    page.screenshot(path=str(artifacts / "console-dadmin-templates.png"), full_page=True)
    page.goto(f"{scope_server}/console/sessions/{scene.other_schedule}")
    assert "本科室" in page.locator("main").inner_text()
    page.close()


def test_linked_doctor_lands_in_their_own_room_and_calls_the_next_patient(
        browser: Any, scope_server: str, scene: Scene, artifacts: Path) -> None:
    page = _sign_in(browser, scope_server, Role.doctor, "/console/queue")
    page.wait_for_url(f"**/console/queue/{scene.own_schedule}")
    assert page.locator("[data-list=queue] li").count() == 2
    page.get_by_role("button", name="叫下一位").click()
    page.locator(f'[data-current="{scene.queued[0]}"]').wait_for(timeout=5000)
    assert "端木青" in page.locator(".console-now").inner_text()
    page.screenshot(path=str(artifacts / "console-doctor-own-queue.png"), full_page=True)
    page.get_by_role("link", name="本科室其他诊室").click()
    page.locator("[data-list=sessions]").wait_for(timeout=5000)
    assert page.locator(f'tr[data-schedule="{scene.other_schedule}"]').count() == 0
    page.close()


def test_hospital_admin_sees_the_doctors_link_on_the_accounts_page(
        browser: Any, scope_server: str, scene: Scene, artifacts: Path) -> None:
    page = _sign_in(browser, scope_server, Role.hospital_admin, "/staff/accounts")
    page.wait_for_url("**/staff/accounts")
    doctor = page.locator("tr", has_text=_demo_account(Role.doctor).username)
    assert doctor.locator(f'[data-linked="{DEMO_PRACTITIONER_CODE}"]').count() == 1
    dadmin = page.locator("tr", has_text=_demo_account(Role.department_admin).username)
    assert DEMO_DEPARTMENT[1] in dadmin.inner_text()
    page.screenshot(path=str(artifacts / "console-staff-accounts.png"), full_page=True)
    page.close()
