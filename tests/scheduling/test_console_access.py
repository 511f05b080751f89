"""Every console page checks the role and the hospital: a clerk of one hospital never sees
another's sessions or queue, a doctor never changes the policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import service
from onetrip.scheduling.rules import SessionOfDay
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic
from tests.scheduling.console_kit import as_staff
from tests.scheduling.test_flows import fill

PAGES = {"/console/window": {Role.window, Role.hospital_admin},
         "/console/queue": {Role.doctor, Role.hospital_admin, Role.regional_admin},
         "/console/sessions": {Role.window, Role.department_admin, Role.hospital_admin,
                               Role.regional_admin},
         "/console/templates": {Role.department_admin, Role.hospital_admin,
                                Role.regional_admin},
         "/console/policy": {Role.hospital_admin, Role.regional_admin}}


def test_signed_out_staff_are_sent_to_sign_in(client: TestClient) -> None:
    for path in [*PAGES, "/console"]:
        r = client.get(path)
        assert r.status_code == 401 and "/staff/sign-in?next=" in r.text, path


@pytest.mark.parametrize("role", [Role.window, Role.doctor, Role.department_admin,
                                  Role.hospital_admin, Role.regional_admin, Role.kiosk,
                                  Role.pharmacist])
def test_each_role_reaches_only_its_own_console_pages(client: TestClient, db: Session,
                                                      clinic: Clinic, role: Role) -> None:
    scoped = None if role is Role.regional_admin else clinic.hospital
    as_staff(client, db, role, scoped, OPEN)
    for path, allowed in PAGES.items():
        expected = 200 if role in allowed else 403
        assert client.get(path).status_code == expected, (path, role)
    home = client.get("/console")
    assert home.status_code == (403 if role in (Role.kiosk, Role.pharmacist) else 200)


def test_a_doctor_cannot_change_the_pool_policy(client: TestClient, db: Session,
                                                clinic: Clinic) -> None:
    as_staff(client, db, Role.doctor, clinic.hospital, OPEN)
    r = client.post("/console/policy", data={"online_share": "100"})
    assert r.status_code == 403 and "无权" in r.text
    assert service.policy_for(db, clinic.hospital.id)[0].online_share == 0.85
    assert client.post("/console/templates/import").status_code == 403


@pytest.fixture
def other(db: Session) -> Clinic:
    """A second hospital with a session of its own."""
    h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    dept = make_department(db, h)
    doc = make_practitioner(db, h, dept, service_level="expert")
    schedule = service.create_schedule(db, hospital=h, department=dept, day=DAY,
                                       session=SessionOfDay.am, practitioner=doc, capacity=10,
                                       slot_minutes=6, now=CREATED)
    window = Principal(role=Role.window, hospital_id=h.id)
    return Clinic(h, dept, doc, schedule, window, window)


def test_staff_of_one_hospital_never_see_another_hospitals_sessions_or_queue(
        client: TestClient, db: Session, clinic: Clinic, other: Clinic) -> None:
    theirs = other.schedule.id
    (appt,) = fill(db, other, 1)
    as_staff(client, db, Role.window, clinic.hospital, OPEN + timedelta(hours=1))
    assert client.get(f"/console/window/schedules/{theirs}").status_code == 404
    patient = appt.patient_id
    r = client.post("/console/window/book", data={"schedule_id": theirs, "patient_id": patient,
                                                  "slot_id": other.schedule.slots[0].id})
    assert r.status_code == 404
    assert client.get(f"/console/sessions/{theirs}").status_code == 404
    assert client.post(f"/console/sessions/{theirs}/stop",
                       data={"reason": "x"}).status_code == 404
    assert client.post(f"/console/window/appointments/{appt.id}/noshow").status_code == 404
    own = client.get("/console/window", params={"day": DAY.isoformat()}).text
    assert f'data-schedule="{theirs}"' not in own and f'data-schedule="{clinic.schedule.id}"' in own

    as_staff(client, db, Role.doctor, clinic.hospital, OPEN)
    assert client.get(f"/console/queue/{theirs}").status_code == 404
    assert client.get(f"/console/queue/{theirs}/panel").status_code == 404
    assert client.post(f"/console/queue/{theirs}/call-next").status_code == 404

    as_staff(client, db, Role.hospital_admin, clinic.hospital, OPEN)
    assert client.get("/console/templates",
                      params={"hospital": other.hospital.code}).status_code == 403
    assert client.post("/console/policy", data={"hospital": other.hospital.code}
                       ).status_code == 403
    db.refresh(other.schedule)
    assert other.schedule.status == "open"


def test_a_regional_admin_picks_any_hospital(client: TestClient, db: Session,
                                             other: Clinic) -> None:
    as_staff(client, db, Role.regional_admin, None, OPEN)
    r = client.get("/console/templates", params={"hospital": other.hospital.code})
    assert r.status_code == 200 and f'data-hospital="{other.hospital.code}"' in r.text
    assert client.get(f"/console/sessions/{other.schedule.id}").status_code == 200
