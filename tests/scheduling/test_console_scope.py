"""A department admin (科室管理员) keeps its own department only, in the console and the API:
templates, the Excel import, generation, stop-clinic and substitute, the affected patients
(issue 5: "department and hospital admins manage weekly templates ..."). Each rule has a
case that would break it: another department's row, session, doctor or template."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.models import AuditEvent
from onetrip.identity.principal import Principal
from onetrip.identity.rules import Role
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import service, templates
from onetrip.scheduling.models import RebookingOffer, Schedule, ScheduleTemplate
from onetrip.scheduling.rules import SessionOfDay
from onetrip.scheduling.templates import TemplateFields
from tests.factories import auth, make_department, make_hospital, make_practitioner, make_token
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic
from tests.scheduling.console_kit import at
from tests.scheduling.test_console_admin import XLSX
from tests.scheduling.test_flows import fill
from tests.scheduling.test_templates import sheet


@dataclass
class Ward:
    """内科 (a grouping) with 心血管内科 under it, and 普通外科 beside them."""

    hospital: Hospital
    inner: Department
    cardio: Department
    surgery: Department
    c1: Practitioner
    c2: Practitioner
    s1: Practitioner
    both: Practitioner  # works in 心血管内科 and 普通外科
    cardio_session: Schedule
    surgery_session: Schedule
    cardio_clinic: Clinic
    surgery_clinic: Clinic


def _template(db: Session, w: Ward, dept: Department, doc: Practitioner, weekday: int,
              session: str = "am") -> ScheduleTemplate:
    return templates.save_template(db, hospital=w.hospital, fields=TemplateFields(
        dept.id, doc.id, weekday, session, None, 6, 20, "expert"))


@pytest.fixture
def ward(db: Session) -> Ward:
    h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    inner = make_department(db, h, name="内科", is_clinical=False)
    cardio = make_department(db, h, name="心血管内科", parent_id=inner.id)
    surgery = make_department(db, h, name="普通外科")
    c1 = make_practitioner(db, h, cardio, name="王心", service_level="expert")
    c2 = make_practitioner(db, h, cardio, name="李心", service_level="expert")
    s1 = make_practitioner(db, h, surgery, name="赵外", service_level="expert")
    both = make_practitioner(db, h, cardio, name="周双", service_level="expert")
    both.departments.append(surgery)

    def session(dept: Department, doc: Practitioner) -> Schedule:
        return service.create_schedule(db, hospital=h, department=dept, day=DAY,
                                       session=SessionOfDay.am, practitioner=doc, capacity=6,
                                       slot_minutes=6, now=CREATED)

    cs, ss = session(cardio, c1), session(surgery, s1)
    window = Principal(role=Role.window, hospital_id=h.id)
    return Ward(h, inner, cardio, surgery, c1, c2, s1, both, cs, ss,
                Clinic(h, cardio, c1, cs, window, window),
                Clinic(h, surgery, s1, ss, window, window))


def _as_admin_of(client: TestClient, db: Session, w: Ward, dept: Department) -> None:
    """Sign the client in as the department admin of ``dept``."""
    client.headers.update(auth(make_token(db, Role.department_admin, w.hospital, dept)))
    at(client, OPEN)


def test_a_department_admin_reaches_templates_and_sessions_but_not_the_policy(
        client: TestClient, db: Session, ward: Ward) -> None:
    _as_admin_of(client, db, ward, ward.cardio)
    assert client.get("/console").status_code == 200
    for path in ("/console/templates", "/console/sessions"):
        r = client.get(path)
        assert r.status_code == 200 and 'data-scope-department' in r.text, path
    for path in ("/console/policy", "/console/window", "/console/queue", "/staff/accounts",
                 "/staff/patients"):
        assert client.get(path).status_code == 403, path
    refused = client.post("/console/policy", data={"online_share": "100"})
    assert refused.status_code == 403
    api = client.put(f"/api/v1/hospitals/{ward.hospital.code}/booking-policy",
                     json={"pools": {"online_share": 1.0}})
    assert api.status_code == 403 and api.json()["code"] == "permission_denied"


def test_templates_page_lists_and_exports_only_the_admins_departments(
        client: TestClient, db: Session, ward: Ward) -> None:
    mine = _template(db, ward, ward.cardio, ward.c1, 1)
    theirs = _template(db, ward, ward.surgery, ward.s1, 1)
    _as_admin_of(client, db, ward, ward.cardio)
    page = client.get("/console/templates").text
    assert f'data-template="{mine.id}"' in page and f'data-template="{theirs.id}"' not in page
    assert f'value="{ward.surgery.id}"' not in page  # not offered in the add form either
    asked = client.get("/console/templates", params={"department": ward.surgery.code}).text
    assert f'data-template="{theirs.id}"' not in asked
    export = client.get("/console/templates/export")
    assert ward.c1.code.encode() in _cells(export.content)
    assert ward.s1.code.encode() not in _cells(export.content)


def _cells(content: bytes) -> bytes:
    import io

    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(content)).active
    assert ws is not None
    return repr(list(ws.iter_rows(values_only=True))).encode()


def test_single_rows_of_another_department_are_refused_beside_the_field(
        client: TestClient, db: Session, ward: Ward) -> None:
    theirs = _template(db, ward, ward.surgery, ward.s1, 2)
    _as_admin_of(client, db, ward, ward.cardio)
    row = {"department_id": str(ward.surgery.id), "practitioner_id": str(ward.c1.id),
           "weekday": "3", "session": "am", "start_time": "", "capacity": "20",
           "slot_minutes": "6", "service_level": "expert", "location_id": ""}
    other_dept = client.post("/console/templates", data=row)
    assert other_dept.status_code == 422 and "只能选择本科室" in other_dept.text
    other_doc = client.post("/console/templates", data=row | {
        "department_id": str(ward.cardio.id), "practitioner_id": str(ward.s1.id)})
    assert other_doc.status_code == 422 and "只能选择本科室医生" in other_doc.text
    assert templates.templates_of(db, ward.hospital) == [theirs]
    # another department's template cannot be opened, changed or retired
    assert client.get(f"/console/templates/{theirs.id}/edit").status_code == 403
    changed = client.post(f"/console/templates/{theirs.id}", data=row | {"capacity": "1"})
    assert changed.status_code == 403 and "本科室" in changed.text
    gone = client.post(f"/console/templates/{theirs.id}/delete")
    assert gone.status_code == 403
    db.refresh(theirs)
    assert theirs.active and theirs.capacity == 20
    ok = client.post("/console/templates", data=row | {"department_id": str(ward.cardio.id)})
    assert ok.status_code == 200 and "已添加出诊模板" in ok.text


def test_the_import_refuses_rows_of_other_departments_with_a_row_error(
        client: TestClient, db: Session, ward: Ward) -> None:
    _as_admin_of(client, db, ward, ward.cardio)
    bad = sheet([ward.cardio.name, ward.c1.code, ward.c1.name, "专家门诊", "", "20", ""],
                [ward.surgery.name, ward.s1.code, ward.s1.name, "专家门诊", "", "20", ""],
                [ward.cardio.name, ward.s1.code, ward.s1.name, "专家门诊", "", "", "10"])
    r = client.post("/console/templates/import", files={"file": ("排班.xlsx", bad, XLSX)})
    assert r.status_code == 422 and 'data-report="sheet"' in r.text
    assert 'data-line="2"' not in r.text
    assert 'data-line="3"' in r.text and "不属于本科室" in r.text
    assert 'data-line="4"' in r.text and "不是本科室医生" in r.text
    assert templates.templates_of(db, ward.hospital) == []  # not even the good row


def test_a_department_import_replaces_its_own_templates_and_keeps_the_others(
        client: TestClient, db: Session, ward: Ward) -> None:
    # 周双 works in both departments: 普通外科 keeps its Monday morning with him.
    kept = _template(db, ward, ward.surgery, ward.both, 1)
    old = _template(db, ward, ward.cardio, ward.both, 3, "pm")
    _as_admin_of(client, db, ward, ward.cardio)
    clash = sheet([ward.cardio.name, ward.both.code, ward.both.name, "专家门诊", "", "20", ""])
    r = client.post("/console/templates/import", files={"file": ("排班.xlsx", clash, XLSX)})
    assert r.status_code == 422 and "已在其他科室出诊" in r.text
    good = sheet([ward.cardio.name, ward.both.code, ward.both.name, "专家门诊", "", "", "12"])
    r = client.post("/console/templates/import", files={"file": ("排班.xlsx", good, XLSX)})
    assert r.status_code == 200 and "已导入1个出诊时段" in r.text
    db.refresh(kept)
    db.refresh(old)
    assert kept.active and not old.active  # his 心血管内科 row was replaced, not 普通外科's
    (new,) = templates.templates_of(db, ward.hospital, frozenset({ward.cardio.id}))
    assert (new.department_id, new.capacity) == (ward.cardio.id, 12)


def test_generation_makes_only_the_admins_departments_sessions(
        client: TestClient, db: Session, ward: Ward) -> None:
    _template(db, ward, ward.cardio, ward.c1, 2)
    _template(db, ward, ward.surgery, ward.s1, 2)
    start = DAY + timedelta(days=1)  # a Tuesday

    def made(dept: Department) -> int:
        return db.scalar(select(func.count()).select_from(Schedule).where(
            Schedule.department_id == dept.id, Schedule.day == start)) or 0

    _as_admin_of(client, db, ward, ward.cardio)
    r = client.post("/console/templates/generate", data={"start": start.isoformat(),
                                                         "days": "1"})
    assert r.status_code == 200 and "data-created>1<" in r.text
    assert (made(ward.cardio), made(ward.surgery)) == (1, 0)


def test_a_department_admin_stops_its_own_clinic_and_sees_only_its_patients(
        client: TestClient, db: Session, ward: Ward) -> None:
    mine = fill(db, ward.cardio_clinic, 2)
    theirs = fill(db, ward.surgery_clinic, 1)
    _as_admin_of(client, db, ward, ward.cardio)
    listing = client.get("/console/sessions", params={"day": DAY.isoformat()}).text
    assert f'data-schedule="{ward.cardio_session.id}"' in listing
    assert f'data-schedule="{ward.surgery_session.id}"' not in listing
    assert client.get(f"/console/sessions/{ward.surgery_session.id}").status_code == 403
    refused = client.post(f"/console/sessions/{ward.surgery_session.id}/stop",
                          data={"reason": "外出"})
    assert refused.status_code == 403 and "本科室" in refused.text
    db.refresh(ward.surgery_session)
    assert ward.surgery_session.status == "open"
    assert db.scalar(select(func.count()).select_from(RebookingOffer).where(
        RebookingOffer.appointment_id == theirs[0].id)) == 0

    r = client.post(f"/console/sessions/{ward.cardio_session.id}/stop", data={"reason": "会诊"})
    assert r.status_code == 200 and r.text.count("data-offer=") == 2
    for a in mine:
        assert f'data-patient="{a.patient_id}"' in r.text
    assert f'data-patient="{theirs[0].patient_id}"' not in r.text


def test_a_substitute_must_be_a_doctor_of_the_admins_departments(
        client: TestClient, db: Session, ward: Ward) -> None:
    _as_admin_of(client, db, ward, ward.cardio)
    form = client.get(f"/console/sessions/{ward.cardio_session.id}").text
    assert f'value="{ward.c2.id}"' in form and f'value="{ward.s1.id}"' not in form
    r = client.post(f"/console/sessions/{ward.cardio_session.id}/substitute",
                    data={"practitioner_id": str(ward.s1.id), "reason": "病假"})
    assert r.status_code == 422 and "本科室医生" in r.text
    db.refresh(ward.cardio_session)
    assert ward.cardio_session.status == "open"
    other = client.post(f"/console/sessions/{ward.surgery_session.id}/substitute",
                        data={"practitioner_id": str(ward.both.id), "reason": "病假"})
    assert other.status_code == 403
    ok = client.post(f"/console/sessions/{ward.cardio_session.id}/substitute",
                     data={"practitioner_id": str(ward.c2.id), "reason": "病假"})
    assert ok.status_code == 200 and "李心" in ok.text


def test_the_api_refuses_another_departments_session_with_a_stable_code(
        client: TestClient, db: Session, ward: Ward) -> None:
    (theirs,) = fill(db, ward.surgery_clinic, 1)
    head = auth(make_token(db, Role.department_admin, ward.hospital, ward.cardio))
    actions = db.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action.in_(("schedule.stop", "schedule.substitute"))))
    stop = client.post(f"/api/v1/schedules/{ward.surgery_session.id}/stop",
                       json={"reason": "外出"}, headers=head)
    assert stop.status_code == 403 and stop.json()["code"] == "outside_department"
    sub = client.post(f"/api/v1/schedules/{ward.surgery_session.id}/substitute",
                      json={"practitioner": ward.both.code, "reason": "病假"}, headers=head)
    assert sub.status_code == 403 and sub.json()["code"] == "outside_department"
    db.refresh(ward.surgery_session)
    db.refresh(theirs)
    assert ward.surgery_session.status == "open" and theirs.status == "booked"
    assert db.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action.in_(("schedule.stop", "schedule.substitute")))) == actions
    other_doc = client.post(f"/api/v1/schedules/{ward.cardio_session.id}/substitute",
                            json={"practitioner": ward.s1.code, "reason": "病假"}, headers=head)
    assert other_doc.status_code == 422 and other_doc.json()["code"] == "invalid_input"
    ok = client.post(f"/api/v1/schedules/{ward.cardio_session.id}/stop",
                     json={"reason": "会诊"}, headers=head)
    assert ok.status_code == 200 and ok.json()["status"] == "stopped"


def test_an_admin_of_a_grouping_keeps_the_departments_under_it_but_not_the_reverse(
        client: TestClient, db: Session, ward: Ward) -> None:
    child = _template(db, ward, ward.cardio, ward.c1, 4)
    _as_admin_of(client, db, ward, ward.inner)
    assert f'data-template="{child.id}"' in client.get("/console/templates").text
    listing = client.get("/console/sessions", params={"day": DAY.isoformat()}).text
    assert f'data-schedule="{ward.cardio_session.id}"' in listing
    _as_admin_of(client, db, ward, ward.surgery)
    assert f'data-template="{child.id}"' not in client.get("/console/templates").text
    assert client.get(f"/console/sessions/{ward.cardio_session.id}").status_code == 403
