"""A doctor's account linked to a practitioner (医生账号关联医生) opens the consulting room
straight onto that doctor's session of the moment (their own, or one they substitute for);
they may open another session of their department, never one of another department
(BK-11). An unlinked account (a shared consulting-room PC) keeps the hospital's list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity import auth
from onetrip.identity.rules import Role
from onetrip.org.models import Department, Practitioner
from onetrip.scheduling import queue, stopclinic
from onetrip.scheduling.models import Schedule
from onetrip.scheduling.rules import SessionOfDay
from onetrip.scheduling.service import create_schedule
from tests.factories import auth as bearer
from tests.factories import make_department, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic, local
from tests.scheduling.console_kit import as_staff, at
from tests.scheduling.test_flows import fill


def _sign_in_linked(client: TestClient, db: Session, clinic: Clinic,
                    doctor: Practitioner) -> None:
    """Sign in as the staff account linked to ``doctor`` (password, no TOTP for doctors)."""
    new = auth.create_staff(db, username=f"t-doc-{doctor.id}", name=doctor.name,
                            role=Role.doctor, hospital_code=clinic.hospital.code,
                            practitioner_code=doctor.code)
    secret = auth.sign_in_staff(db, username=new.staff.username, password=new.password).secret
    assert secret is not None
    client.headers.update(bearer(secret))


@pytest.fixture
def other_dept(db: Session, clinic: Clinic) -> tuple[Department, Schedule]:
    dept = make_department(db, clinic.hospital, name="神经内科")
    doc = make_practitioner(db, clinic.hospital, dept, name="神经医生", service_level="expert")
    return dept, create_schedule(db, hospital=clinic.hospital, department=dept, day=DAY,
                                 session=SessionOfDay.am, practitioner=doc, capacity=5,
                                 slot_minutes=6, now=CREATED)


def test_a_linked_doctor_opens_straight_onto_the_session_of_the_moment(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    pm = clinic.session(db, session=SessionOfDay.pm)  # 13:30-14:30; the morning is 08:00-09:00
    _sign_in_linked(client, db, clinic, clinic.doctor)
    for hour, expected in ((7, clinic.schedule), (8, clinic.schedule), (10, pm), (20, pm)):
        at(client, local(DAY, hour, 30))
        r = client.get("/console/queue", follow_redirects=False)
        assert r.status_code == 303, hour
        assert r.headers["location"] == f"/console/queue/{expected.id}", hour
    page = client.get(f"/console/queue/{pm.id}")
    assert page.status_code == 200 and 'data-list="mine"' in page.text
    assert f'href="/console/queue/{clinic.schedule.id}"' in page.text  # the morning, one click
    assert f'data-scope-doctor="{clinic.doctor.code}"' in page.text


def test_the_session_they_substitute_for_is_theirs_and_the_one_handed_over_is_not(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="代诊医生")
    theirs = clinic.session(db, doctor=colleague, session=SessionOfDay.pm)
    stopclinic.substitute(db, principal=clinic.window, schedule_id=theirs.id,
                          practitioner_id=clinic.doctor.id, reason="病假", now=OPEN)
    stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                          practitioner_id=colleague.id, reason="外出", now=OPEN)
    _sign_in_linked(client, db, clinic, clinic.doctor)
    at(client, local(DAY, 8, 10))  # his own morning went to the colleague: the afternoon
    r = client.get("/console/queue", follow_redirects=False)
    assert r.headers["location"] == f"/console/queue/{theirs.id}"


def test_without_a_session_of_the_day_the_list_shows_the_department_only(
        client: TestClient, db: Session, clinic: Clinic,
        other_dept: tuple[Department, Schedule]) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="同科医生")
    colleagues = clinic.session(db, doctor=colleague, session=SessionOfDay.pm)
    _sign_in_linked(client, db, clinic, colleague)
    at(client, local(DAY + timedelta(days=1), 9))  # nothing of his the next day
    empty = client.get("/console/queue")
    assert empty.status_code == 200 and 'data-empty="mine"' in empty.text
    listing = client.get("/console/queue", params={"day": DAY.isoformat()}).text
    assert f'data-schedule="{clinic.schedule.id}"' in listing  # his department's
    assert f'data-schedule="{other_dept[1].id}"' not in listing  # not another's
    assert 'data-list="mine"' in listing and f'data-schedule="{colleagues.id}"' in listing
    at(client, local(DAY, 9))
    assert client.get("/console/queue", params={"all": "1"}).status_code == 200


def test_a_linked_doctor_may_open_a_colleagues_room_but_not_another_departments(
        client: TestClient, db: Session, clinic: Clinic,
        other_dept: tuple[Department, Schedule]) -> None:
    _dept, elsewhere = other_dept
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="同室医生")
    own_room = clinic.session(db, doctor=colleague, session=SessionOfDay.pm)
    (waiting,) = fill(db, clinic, 1, schedule_id=elsewhere.id)
    queue.check_in(db, principal=clinic.window, appointment_id=waiting.id,
                   patient_id=waiting.patient_id, now=local(DAY, 7, 50))
    _sign_in_linked(client, db, clinic, clinic.doctor)
    at(client, local(DAY, 8, 0))
    assert client.get(f"/console/queue/{own_room.id}").status_code == 200
    refused = client.get(f"/console/queue/{elsewhere.id}")
    assert refused.status_code == 403 and "本科室" in refused.text
    assert client.post(f"/console/queue/{elsewhere.id}/call-next").status_code == 403
    api = client.post(f"/api/v1/schedules/{elsewhere.id}/call-next")
    assert api.status_code == 403 and api.json()["code"] == "outside_department"
    db.refresh(waiting)
    assert waiting.called_at is None and waiting.status == "arrived"


def test_an_unlinked_doctor_account_still_picks_from_the_hospitals_list(
        client: TestClient, db: Session, clinic: Clinic,
        other_dept: tuple[Department, Schedule]) -> None:
    as_staff(client, db, Role.doctor, clinic.hospital, local(DAY, 8, 0))
    r = client.get("/console/queue", follow_redirects=False)
    assert r.status_code == 200
    assert f'data-schedule="{clinic.schedule.id}"' in r.text
    assert f'data-schedule="{other_dept[1].id}"' in r.text
    assert 'data-list="mine"' not in r.text
    assert client.post(f"/api/v1/schedules/{other_dept[1].id}/call-next").status_code == 200
