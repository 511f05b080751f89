"""Booking indicators from the visits the booking flows leave: the appointment rate (国考
22, BK-9), the wait after booking (国考 23), the no-show rate (BK-6), the online share of
slots (BK-2) and how far ahead patients book."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.deps import get_now
from onetrip.identity import auth as auth_service
from onetrip.identity.models import FamilyMember
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital, Region
from onetrip.scheduling import booking, demo, indicators, queue, service
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import auth, make_department, make_hospital, make_practitioner, make_token
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic, local

AFTER = local(DAY + timedelta(days=1), 9)


@dataclass
class Day:
    """One clinic morning through the real flows, and what each patient did."""

    early: Appointment  # booked at the window two days ahead, came early, called 08:10
    late: Appointment  # booked online, came 14 minutes late, called 08:30
    on_site: Appointment  # registered at the window that morning
    absent: Appointment  # booked online, never came
    cancelled: Appointment


def _morning(db: Session, clinic: Clinic) -> Day:
    def online(patient_id: int) -> Appointment:
        return booking.book(db, principal=clinic.patient_principal(patient_id),
                            patient_id=patient_id, channel=Channel.web,
                            schedule_id=clinic.schedule.id, now=OPEN)

    ids = [clinic.patient(db)[0].id for _ in range(5)]
    early = clinic.book(db, ids[0])
    late, absent, cancelled = online(ids[1]), online(ids[2]), online(ids[3])
    booking.cancel(db, principal=clinic.window, appointment_id=cancelled.id,
                   now=OPEN + timedelta(hours=1))
    on_site = clinic.book(db, ids[4], now=local(DAY, 8, 15))
    assert early.start_at == local(DAY, 8) and late.start_at == local(DAY, 8, 6)

    def arrive(a: Appointment, at: tuple[int, int]) -> None:
        queue.check_in(db, principal=clinic.window, appointment_id=a.id, patient_id=a.patient_id,
                       now=local(DAY, *at))

    arrive(early, (7, 50))
    called = queue.call_next(db, principal=clinic.doctor_principal,
                             schedule_id=clinic.schedule.id, now=local(DAY, 8, 10))
    arrive(late, (8, 20))
    arrive(on_site, (8, 16))
    again = queue.call_next(db, principal=clinic.doctor_principal,
                            schedule_id=clinic.schedule.id, now=local(DAY, 8, 30))
    assert called is not None and again is not None and (called.id, again.id) == (early.id,
                                                                                late.id)
    assert queue.mark_noshows(db, now=AFTER, hospital_id=clinic.hospital.id) == 1
    db.flush()
    return Day(early, late, on_site, absent, cancelled)


def test_a_morning_gives_each_indicator_by_its_definition(db: Session, clinic: Clinic) -> None:
    day = _morning(db, clinic)
    [h] = indicators.figures(db, [clinic.hospital], DAY, DAY)
    f = h.total
    # Three came; the on-site registration of that morning is not a booking (国考 22).
    assert (f.visits, f.booked_visits) == (3, 2)
    assert f.appointment_rate == pytest.approx(2 / 3)
    # 国考 23: the early patient waits from the slot (08:00 to 08:10), not from 07:50; the
    # late one from check-in (08:20 to 08:30).
    assert f.called == 2 and f.average_wait_minutes == pytest.approx(10, abs=0.01)
    assert (f.noshows, f.noshow_rate) == (1, pytest.approx(1 / 4))
    pools = Counter(db.scalars(select(Slot.pool).where(Slot.schedule_id == clinic.schedule.id)))
    assert (f.slots, f.online_slots) == (sum(pools.values()), pools["online"] + pools["referral"])
    assert f.online_share is not None and f.online_share >= indicators.ONLINE_SHARE_FLOOR
    leads = [(a.start_at - OPEN).total_seconds() / 86400 for a in (day.early, day.late)]
    assert f.average_lead_days == pytest.approx(sum(leads) / 2, abs=0.001)
    assert [(d.id, fig) for d, fig in h.departments] == [(clinic.department.id, f)]


def test_the_period_and_the_departments_bound_the_figures(db: Session, clinic: Clinic) -> None:
    _morning(db, clinic)
    other = make_department(db, clinic.hospital, name="消化内科")
    doctor = make_practitioner(db, clinic.hospital, other)
    service.create_schedule(db, hospital=clinic.hospital, department=other, day=DAY,
                            session=SessionOfDay.am, practitioner=doctor, capacity=4,
                            slot_minutes=6, now=CREATED)
    [h] = indicators.figures(db, [clinic.hospital], DAY, DAY)
    by_code = sorted([clinic.department, other], key=lambda d: d.code)
    assert [d.id for d, _f in h.departments] == [d.id for d in by_code]
    assert h.total.slots == 14 and h.total.visits == 3
    [mine] = indicators.figures(db, [clinic.hospital], DAY, DAY, frozenset({other.id}))
    assert (mine.total.visits, mine.total.slots) == (0, 4)
    assert mine.total.appointment_rate is None and mine.total.average_wait_minutes is None
    [before] = indicators.figures(db, [clinic.hospital], DAY - timedelta(days=7),
                                  DAY - timedelta(days=1))
    assert before.total == indicators.Figures() and before.departments == []


def test_the_period_is_checked() -> None:
    year = (DAY + timedelta(days=365)).isoformat()
    for start, end, month in ((DAY.isoformat(), "2026-12-13", None),
                              (DAY.isoformat(), (DAY + timedelta(days=366)).isoformat(), None),
                              (None, DAY.isoformat(), None), ("2026-02-30", "2026-03-01", None),
                              (None, None, "2026-13"), (None, None, None), ("", "", ""),
                              (None, None, "9999-12"), ("9999-12-30", "9999-12-31", None),
                              ("0001-01-01", "0001-01-02", None)):
        with pytest.raises(indicators.IndicatorPeriodInvalid):
            indicators.period(start, end, month)
    assert indicators.period(DAY.isoformat(), year) == (DAY, DAY + timedelta(days=365))
    assert indicators.period(None, None, "2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert indicators.period(None, None, "2027-02") == (date(2027, 2, 1), date(2027, 2, 28))


def _get(client: TestClient, token: str, **params: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = client.get("/api/v1/indicators/booking", headers=auth(token),
                   params={"from": DAY.isoformat(), "to": DAY.isoformat(), **params})
    return r.status_code, r.json()


def test_the_api_gives_each_viewer_its_own_hospitals(client: TestClient, db: Session,
                                                    clinic: Clinic) -> None:
    _morning(db, clinic)
    elsewhere = make_hospital(db)
    tokens = {role: make_token(db, role, clinic.hospital) for role in (
        Role.hospital_admin, Role.department_admin, Role.window)}
    regional, regulator = make_token(db, Role.regional_admin), make_token(db, Role.regulator)
    db.commit()

    status, body = _get(client, tokens[Role.hospital_admin])
    assert status == 200 and [h["hospital"] for h in body["hospitals"]] == [clinic.hospital.code]
    mine = body["hospitals"][0]
    assert (mine["visits"], mine["booked_visits"], mine["appointment_rate"]) == (3, 2, 0.6667)
    assert (mine["average_wait_minutes"], mine["noshows"], mine["online_share_met"]) == (
        10.0, 1, True)
    assert mine["departments"][0]["code"] == clinic.department.code
    assert body["from"] == body["to"] == DAY.isoformat()

    status, body = _get(client, tokens[Role.department_admin])
    assert status == 200 and body["hospitals"][0]["visits"] == 3  # its one department

    for token in (regional, regulator):
        status, body = _get(client, token)
        codes = [h["hospital"] for h in body["hospitals"]]
        assert status == 200 and {clinic.hospital.code, elsewhere.code} <= set(codes)
        status, body = _get(client, token, hospital=elsewhere.code)
        assert status == 200 and body["hospitals"][0]["visits"] == 0

    status, body = _get(client, tokens[Role.hospital_admin], hospital=elsewhere.code)
    assert status == 403 and body["code"] == "permission_denied"
    status, body = _get(client, tokens[Role.window])
    assert status == 403
    status, body = _get(client, regional, hospital="nowhere")
    assert status == 404 and body["code"] == "hospital_not_found"
    for bad in ({"to": (DAY - timedelta(days=1)).isoformat()}, {"from": "2026-02-30"},
                {"to": (DAY + timedelta(days=400)).isoformat()}):
        status, body = _get(client, tokens[Role.hospital_admin], **bad)
        assert status == 422, bad


def test_the_console_page_shows_the_figures_and_refuses_a_bad_period(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    _morning(db, clinic)
    token = make_token(db, Role.hospital_admin, clinic.hospital)
    db.commit()
    client.headers.update(auth(token))
    page = client.get("/console/indicators", params={"from": DAY.isoformat(),
                                                     "to": DAY.isoformat()})
    assert page.status_code == 200 and "预约诊疗率" in page.text
    assert 'data-rate="0.6667"' in page.text and clinic.department.name in page.text
    bad = client.get("/console/indicators", params={"from": DAY.isoformat(),
                                                    "to": (DAY - timedelta(days=3)).isoformat()})
    assert bad.status_code == 422 and "统计期间有误" in bad.text
    month = client.get("/console/indicators", params={"month": "2026-12"})
    assert month.status_code == 200 and 'data-rate="0.6667"' in month.text


def test_the_regulator_sees_every_hospital_and_then_one_hospitals_departments(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    _morning(db, clinic)
    regulator, clerk = make_token(db, Role.regulator), make_token(db, Role.window, clinic.hospital)
    db.commit()
    span = {"from": DAY.isoformat(), "to": DAY.isoformat()}
    region = client.get("/console/indicators", params=span, headers=auth(regulator))
    assert region.status_code == 200
    assert f'data-hospital="{clinic.hospital.code}" data-rate="0.6667"' in region.text
    assert "全区域" in region.text and 'href="/console"' not in region.text  # no 工作台
    one = client.get("/console/indicators", params={**span, "hospital": clinic.hospital.code},
                     headers=auth(regulator))
    assert f'data-department="{clinic.department.code}" data-rate="0.6667"' in one.text
    assert client.get("/console/indicators", headers=auth(clerk)).status_code == 403


def test_the_demo_region_has_a_past_week_of_visits_to_count(db: Session) -> None:
    today = utcnow().astimezone(get_settings().tz).date()
    hospitals = list(db.scalars(select(Hospital).join(Region).where(Region.is_demo)))
    rows = indicators.figures(db, hospitals, today - timedelta(days=demo.HISTORY_DAYS),
                              today - timedelta(days=1))
    total = sum((r.total for r in rows), indicators.Figures())
    assert total.visits > 1000 and 0 < total.booked_visits < total.visits
    assert total.noshows > 0 and total.called > 0 and (total.average_wait_minutes or 0) > 0
    # No demo sign-in meets a no-show's restriction: the no-shows are of patients without
    # a phone account.
    assert db.scalar(select(func.count()).select_from(Appointment).join(
        FamilyMember, FamilyMember.patient_id == Appointment.patient_id).where(
        Appointment.status == "noshow")) == 0


def test_a_stop_clinic_rebooking_on_the_day_counts_as_booked(db: Session,
                                                             clinic: Clinic) -> None:
    """BK-6: a clinic stopped that morning moves its patients at the window; the booking
    each replaces was made before, so the visit stays a booked one."""
    day = _morning(db, clinic)
    assert indicators.figures(db, [clinic.hospital], DAY, DAY)[0].total.booked_visits == 2
    day.on_site.rebooked_from_id = day.cancelled.id
    db.flush()
    [h] = indicators.figures(db, [clinic.hospital], DAY, DAY)
    assert (h.total.visits, h.total.booked_visits) == (3, 3)


# --- BK-10: kiosks ----------------------------------------------------------------------------


def _kiosk(db: Session, hospital: Hospital, *, created: datetime,
           revoked: datetime | None = None, role: Role = Role.kiosk) -> None:
    row, _secret = auth_service.create_token(db, role=role, hospital_code=hospital.code,
                                             label="门诊大厅自助机")
    row.created_at, row.revoked_at = created, revoked
    db.flush()


@pytest.mark.parametrize(("visits", "days", "needed"), [
    (0, 31, 0), (1, 31, 1), (50_000, 365, 1), (50_001, 365, 2), (137, 1, 2), (136, 1, 1),
    (4_167, 30, 2), (4_109, 30, 1)])
def test_kiosks_needed_are_one_per_50000_visits_a_year(visits: int, days: int,
                                                       needed: int) -> None:
    """BK-10: the period's visits, scaled to a year, need one kiosk per 50,000."""
    assert indicators.kiosks_needed(visits, days) == needed


def test_kiosks_in_service_at_the_end_of_the_period_are_counted(db: Session,
                                                                clinic: Clinic) -> None:
    _morning(db, clinic)
    end = local(DAY + timedelta(days=1), 0)  # the period is DAY: it ends at midnight after
    _kiosk(db, clinic.hospital, created=CREATED)  # in service
    _kiosk(db, clinic.hospital, created=CREATED, revoked=end)  # taken out as the day ended
    _kiosk(db, clinic.hospital, created=CREATED, revoked=end - timedelta(hours=1))  # before
    _kiosk(db, clinic.hospital, created=end)  # set up after the period
    _kiosk(db, clinic.hospital, created=CREATED, role=Role.window)  # a desk, not a kiosk
    _kiosk(db, make_hospital(db), created=CREATED)  # another hospital's
    [h] = indicators.figures(db, [clinic.hospital], DAY, DAY)
    # Three visits in a day are 1,095 a year: one kiosk is needed; two are in service.
    assert (h.kiosks, h.kiosks_needed, h.kiosks_met) == (2, 1, True)
    [before] = indicators.figures(db, [clinic.hospital], CREATED.date() - timedelta(days=1),
                                  CREATED.date() - timedelta(days=1))
    assert (before.kiosks, before.kiosks_needed, before.kiosks_met) == (0, 0, True)


def test_the_api_and_the_page_show_kiosk_coverage(client: TestClient, db: Session,
                                                  clinic: Clinic) -> None:
    _morning(db, clinic)
    regulator = make_token(db, Role.regulator)
    db.commit()
    status, body = _get(client, regulator, hospital=clinic.hospital.code)
    mine = body["hospitals"][0]
    assert status == 200 and (mine["kiosks"], mine["kiosks_needed"], mine["kiosks_met"]) == (
        0, 1, False)
    _kiosk(db, clinic.hospital, created=CREATED)
    db.commit()
    status, body = _get(client, regulator)
    mine = next(h for h in body["hospitals"] if h["hospital"] == clinic.hospital.code)
    assert (mine["kiosks"], mine["kiosks_needed"], mine["kiosks_met"]) == (1, 1, True)
    assert body["region"]["kiosks"] == sum(h["kiosks"] for h in body["hospitals"])
    assert body["region"]["kiosks_needed"] == sum(h["kiosks_needed"] for h in body["hospitals"])
    assert "kiosks" not in mine["departments"][0]
    page = client.get("/console/indicators", headers=auth(regulator),
                      params={"from": DAY.isoformat(), "to": DAY.isoformat()})
    assert f'data-hospital="{clinic.hospital.code}"' in page.text and "自助机" in page.text
    row = page.text.split(f'data-hospital="{clinic.hospital.code}"')[1].split("</tr>")[0]
    assert 'data-kiosks="1/1"' in row


def test_the_demo_hospitals_have_kiosks(db: Session) -> None:
    today = utcnow().astimezone(get_settings().tz).date()
    hospitals = list(db.scalars(select(Hospital).join(Region).where(Region.is_demo)))
    rows = indicators.figures(db, hospitals, today - timedelta(days=demo.HISTORY_DAYS),
                              today - timedelta(days=1))
    assert all(r.kiosks >= 1 for r in rows)
    assert any(r.kiosks_met for r in rows)


def test_a_period_in_progress_needs_kiosks_for_the_days_gone_by(
        client: TestClient, db: Session, clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    """A month still running has had only its first days' visits: scaled over all its days,
    they would understate the year."""
    assert indicators.days_gone_by(DAY, DAY + timedelta(days=30), DAY) == 1
    assert indicators.days_gone_by(DAY, DAY + timedelta(days=30), None) == 31
    assert indicators.days_gone_by(DAY, DAY + timedelta(days=30), DAY + timedelta(days=40)) == 31
    _morning(db, clinic)
    regulator = make_token(db, Role.regulator)
    db.commit()
    monkeypatch.setattr(indicators, "VISITS_PER_KIOSK", 10)  # three visits then count
    client.app.dependency_overrides[get_now] = lambda: local(DAY, 20)  # type: ignore[attr-defined]
    status, body = _get(client, regulator, hospital=clinic.hospital.code, **{
        "from": (DAY - timedelta(days=13)).isoformat(),
        "to": (DAY + timedelta(days=17)).isoformat()})
    # 3 visits in the 14 days gone by are 78 a year: 8 kiosks at 10 visits each (over all
    # 31 days of the period it would be 4).
    assert status == 200 and body["hospitals"][0]["kiosks_needed"] == 8
