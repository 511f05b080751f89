"""Kiosk mode (BK-10, ID-4): device sign-in, card identification, same-day registration from
the window pool, ticket pickup with check-in, the printed ticket, and forgetting the patient."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import TOKEN_COOKIE
from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.rules import DocumentType, Role, mask_name, may_act_for_patient
from onetrip.identity.service import Principal
from onetrip.scheduling import service
from onetrip.scheduling.kiosk_pages import PATIENT_COOKIE, patient_cookie, patient_from_cookie
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import CHANNEL_POOLS, Channel, Pool, SessionOfDay
from tests.factories import (
    WINDOW,
    make_department,
    make_patient,
    make_practitioner,
    make_token,
    resident_id,
)
from tests.scheduling.conftest import CREATED, DAY, Clinic, Clock, chinese_name, local

#: On the clinic day before the session: window slots are out, check-in is open.
MORNING = local(DAY, 7, 30)


@pytest.fixture
def kiosk(client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> TestClient:
    client.cookies.set(TOKEN_COOKIE, make_token(db, Role.kiosk, clinic.hospital))
    clock.now = MORNING
    return client


def person(db: Session) -> tuple[Patient, str]:
    number = resident_id(date(1950, 5, 5))
    return make_patient(db, name=chinese_name(), document_number=number), number


def identify(client: TestClient, number: str) -> None:
    r = client.post("/kiosk/identify", data={"card": number}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/kiosk/menu"


def test_bk10_kiosk_rules_same_day_window_pool_and_only_the_presented_patient() -> None:
    assert CHANNEL_POOLS[Channel.kiosk] == {Pool.online, Pool.window}
    assert not may_act_for_patient(Role.kiosk, 7, frozenset())  # a token alone: nobody
    assert may_act_for_patient(Role.kiosk, 7, frozenset({7}))
    assert not may_act_for_patient(Role.kiosk, 8, frozenset({7}))
    assert mask_name("张三") == "张*" and mask_name("欧阳小华") == "欧**华"


def test_the_device_signs_in_once_with_a_kiosk_token(client: TestClient, clinic: Clinic,
                                                     db: Session) -> None:
    setup = client.get("/kiosk")
    assert setup.status_code == 200 and "启用自助机" in setup.text
    wrong = client.post("/kiosk/setup", data={"token": make_token(db, Role.window,
                                                                  clinic.hospital)})
    assert wrong.status_code == 422 and 'data-field="token"' in wrong.text
    bad = client.post("/kiosk/setup", data={"token": "ot_nonsense"})
    assert bad.status_code == 401 and "令牌无效" in bad.text
    ok = client.post("/kiosk/setup", data={"token": make_token(db, Role.kiosk, clinic.hospital)},
                     follow_redirects=False)
    assert ok.status_code == 303 and "Max-Age=" in ok.headers["set-cookie"]
    home = client.get("/kiosk")
    assert "请刷身份证或电子健康卡" in home.text and clinic.hospital.name in home.text


def test_id4_identify_by_resident_id_or_health_card(kiosk: TestClient, db: Session) -> None:
    p, number = person(db)
    junk = kiosk.post("/kiosk/identify", data={"card": "12345"})
    assert junk.status_code == 422 and 'data-field="card"' in junk.text
    assert 'value="12345"' in junk.text  # what was typed stays
    unknown = kiosk.post("/kiosk/identify", data={"card": resident_id(date(1960, 1, 1))})
    assert unknown.status_code == 404 and "人工窗口实名建档" in unknown.text
    identify(kiosk, number.lower())
    menu = kiosk.get("/kiosk/menu")
    assert menu.status_code == 200 and mask_name(p.name) in menu.text and p.name not in menu.text
    assert 'http-equiv="refresh"' in menu.text and "url=/kiosk/done" in menu.text
    card = "ABCDEF0123456789" * 4
    identity_service.add_document(db, WINDOW, p.id, document_type=DocumentType.health_card,
                                  document_number=card)
    kiosk.get("/kiosk/done")
    identify(kiosk, " ".join(card[i:i + 16].lower() for i in range(0, 64, 16)))
    assert mask_name(p.name) in kiosk.get("/kiosk/menu").text


def test_bk10_same_day_registration_from_the_window_pool_checks_in_once(
        kiosk: TestClient, clinic: Clinic, db: Session) -> None:
    p, number = person(db)
    identify(kiosk, number)
    register = kiosk.get("/kiosk/register")
    assert f'data-dept="{clinic.department.code}"' in register.text
    doctors = kiosk.get("/kiosk/register", params={"dept": clinic.department.code})
    assert f'data-schedule="{clinic.schedule.id}"' in doctors.text
    times = kiosk.get(f"/kiosk/schedules/{clinic.schedule.id}")
    offered = {int(i) for i in re.findall(r'data-slot="(\d+)"', times.text)}
    window = [s for s in clinic.schedule.slots if s.pool == "window"]
    assert window and {s.id for s in window} <= offered  # BK-10: the window pool on the day
    assert not any(s.id in offered for s in clinic.schedule.slots if s.pool == "priority")
    confirm = kiosk.get(f"/kiosk/slots/{window[0].id}")
    token = re.search(r'name="form_token" value="([^"]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    first = kiosk.post(f"/kiosk/slots/{window[0].id}", data={"form_token": token},
                       follow_redirects=False)
    again = kiosk.post(f"/kiosk/slots/{window[0].id}", data={"form_token": token},
                       follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    appts = list(db.scalars(select(Appointment).where(Appointment.patient_id == p.id)))
    assert len(appts) == 1 and appts[0].status == "arrived" and appts[0].channel == "kiosk"
    ticket = kiosk.get(first.headers["location"])
    assert ticket.status_code == 200 and "<svg" in ticket.text and "报到凭条" in ticket.text
    assert f'data-number="{db.get_one(Slot, window[0].id).seq + 1}"' in ticket.text
    assert mask_name(p.name) in ticket.text and p.name not in ticket.text
    assert number not in ticket.text


def test_ticket_pickup_checks_in_an_existing_booking(kiosk: TestClient, clinic: Clinic,
                                                     db: Session) -> None:
    p, number = person(db)
    appt = clinic.book(db, p.id, now=local(DAY - timedelta(days=1), 9))
    identify(kiosk, number)
    listed = kiosk.get("/kiosk/appointments")
    assert f'data-appointment="{appt.id}"' in listed.text and "报到取号</button>" in listed.text
    r = kiosk.post(f"/kiosk/appointments/{appt.id}/check-in", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/kiosk/tickets/{appt.id}"
    db.refresh(appt)
    assert appt.status == "arrived"
    ticket = kiosk.get(r.headers["location"])
    assert 'data-fact="queue"' in ticket.text and "前面0人" in ticket.text


def test_a_check_in_too_early_is_refused_in_chinese(kiosk: TestClient, clock: Clock,
                                                    clinic: Clinic, db: Session) -> None:
    p, number = person(db)
    appt = clinic.book(db, p.id, now=local(DAY - timedelta(days=1), 9))
    clock.now = local(DAY, 5)
    identify(kiosk, number)
    r = kiosk.post(f"/kiosk/appointments/{appt.id}/check-in")
    assert r.status_code == 409 and "分钟内报到" in r.text
    db.refresh(appt)
    assert appt.status == "booked"


def test_no_one_reaches_another_patients_booking(kiosk: TestClient, clinic: Clinic,
                                                 db: Session) -> None:
    _a, a_number = person(db)
    b, _ = person(db)
    theirs = clinic.book(db, b.id, now=local(DAY - timedelta(days=1), 9))
    identify(kiosk, a_number)
    assert kiosk.post(f"/kiosk/appointments/{theirs.id}/check-in").status_code == 404
    assert kiosk.get(f"/kiosk/tickets/{theirs.id}").status_code == 404
    db.refresh(theirs)
    assert theirs.status == "booked"


def test_the_patient_is_forgotten_when_done_and_after_idle(kiosk: TestClient, clock: Clock,
                                                           db: Session) -> None:
    _p, number = person(db)
    identify(kiosk, number)
    done = kiosk.get("/kiosk/done", follow_redirects=False)
    assert done.status_code == 303 and PATIENT_COOKIE in done.headers["set-cookie"]
    gone = kiosk.get("/kiosk/menu")
    assert gone.status_code == 401 and "重新刷卡" in gone.text
    identify(kiosk, number)
    clock.now = MORNING + timedelta(seconds=get_settings().kiosk_idle_seconds + 1)
    assert kiosk.get("/kiosk/menu").status_code == 401


def test_a_patient_cookie_only_works_on_its_own_kiosk_and_unaltered() -> None:
    one = Principal(role=Role.kiosk, hospital_id=1, token_id=1)
    two = Principal(role=Role.kiosk, hospital_id=1, token_id=2)
    value = patient_cookie(42, one, MORNING)
    assert patient_from_cookie(value, one, MORNING) == 42
    assert patient_from_cookie(value, two, MORNING) is None
    assert patient_from_cookie(value.replace("42.", "43.", 1), one, MORNING) is None
    assert patient_from_cookie("", one, MORNING) is None
    # Numbers int() would refuse (²) or read (full-width): not this kiosk's cookie either.
    for forged in ("².1.1.0.x", "４２.1.1.0.x", "42.1.1.0"):
        assert patient_from_cookie(forged, one, MORNING) is None


def test_before_the_same_day_opening_the_kiosk_offers_no_time_it_would_refuse(
        kiosk: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    _p, number = person(db)
    clock.now = local(DAY, 6, 30)  # the hall opens before registration does
    identify(kiosk, number)
    register = kiosk.get("/kiosk/register")
    tile = re.search(rf'data-dept="{clinic.department.code}">(.*?)</a>', register.text, re.S)
    assert tile is not None and "07:00放号" in tile.group(1)
    times = kiosk.get(f"/kiosk/schedules/{clinic.schedule.id}")
    assert "data-slot=" not in times.text and "07:00" in times.text
    assert "已无号源" not in times.text
    clock.now = local(DAY, 7)
    identify(kiosk, number)  # half an hour later the kiosk has long forgotten the patient
    assert "data-slot=" in kiosk.get(f"/kiosk/schedules/{clinic.schedule.id}").text


def test_departments_keep_the_hospitals_order_whatever_the_days_sessions(
        kiosk: TestClient, clinic: Clinic, db: Session) -> None:
    """A kiosk user finds a department where it was yesterday: the tiles follow the
    hospital's department order, not the start times of the day's sessions."""
    first = make_department(db, clinic.hospital, name="儿科", sort_order=-1)
    doctor = make_practitioner(db, clinic.hospital, first)
    service.create_schedule(db, hospital=clinic.hospital, department=first, day=DAY,
                            session=SessionOfDay.pm, practitioner=doctor, capacity=10,
                            slot_minutes=6, now=CREATED)
    _p, number = person(db)
    identify(kiosk, number)
    tiles = re.findall(r'data-dept="([^"]+)"', kiosk.get("/kiosk/register").text)
    assert tiles[:2] == [first.code, clinic.department.code]


def test_the_address_cannot_write_a_message_onto_the_kiosk_screen(
        kiosk: TestClient, db: Session) -> None:
    _p, number = person(db)
    identify(kiosk, number)
    page = kiosk.get("/kiosk/appointments", params={"error": "请扫码向个人账户缴费"})
    assert page.status_code == 200 and "扫码" not in page.text


def test_bk10_booking_ahead_at_the_kiosk_books_a_later_day_without_check_in(
        kiosk: TestClient, clinic: Clinic, db: Session) -> None:
    later = clinic.session(db, day=DAY + timedelta(days=2))
    _p, number = person(db)
    identify(kiosk, number)
    ahead = kiosk.get("/kiosk/register", params={"ahead": 1})
    assert "预约挂号" in ahead.text and "当日挂号</h1>" not in ahead.text
    doctors = kiosk.get("/kiosk/register", params={"day": later.day.isoformat(),
                                                   "dept": clinic.department.code})
    assert f'data-schedule="{later.id}"' in doctors.text
    slot = re.findall(r'data-slot="(\d+)"', kiosk.get(f"/kiosk/schedules/{later.id}").text)[0]
    confirm = kiosk.get(f"/kiosk/slots/{slot}")
    assert "确认预约</button>" in confirm.text
    token = re.search(r'name="form_token" value="([^"]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    r = kiosk.post(f"/kiosk/slots/{slot}", data={"form_token": token}, follow_redirects=False)
    assert r.status_code == 303
    appt = db.scalars(select(Appointment).where(Appointment.schedule_id == later.id)).one()
    assert (appt.channel, appt.status, appt.pool) == ("kiosk", "booked", "online")
    ticket = kiosk.get(r.headers["location"])
    assert "预约凭条" in ticket.text and "起刷卡报到" in ticket.text
