"""Admin console: weekly templates, the Excel sheet and its error report, generation, and
the pool policy with its floors shown beside the fields (BK-2, BK-4)."""

from __future__ import annotations

import io
from datetime import time, timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import audit
from onetrip.identity.models import AuditEvent
from onetrip.identity.rules import Role
from onetrip.scheduling import service, templates
from onetrip.scheduling.cli import CLI
from onetrip.scheduling.models import Schedule
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.conftest import DAY, Clinic, local
from tests.scheduling.console_kit import as_staff
from tests.scheduling.test_templates import sheet

NOW = local(DAY - timedelta(days=20), 9)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _row(clinic: Clinic, **kw: str) -> dict[str, str]:
    return {"department_id": str(clinic.department.id),
            "practitioner_id": str(clinic.doctor.id), "weekday": "2", "session": "am",
            "start_time": "", "capacity": "24", "slot_minutes": "8",
            "service_level": "expert", "location_id": "", **kw}


def test_admin_adds_changes_and_retires_a_template_row_with_field_errors(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    as_staff(client, db, Role.hospital_admin, clinic.hospital, NOW)
    assert 'data-empty="templates"' in client.get("/console/templates").text
    bad = client.post("/console/templates", data=_row(clinic, capacity="二十", practitioner_id=""))
    assert bad.status_code == 422
    assert 'data-field="capacity"' in bad.text and 'data-field="practitioner_id"' in bad.text
    for odd in ("²", "２０"):
        r = client.post("/console/templates", data=_row(clinic, capacity=odd, weekday=odd))
        assert r.status_code == 422 and 'data-field="capacity"' in r.text, odd
    assert templates.templates_of(db, clinic.hospital) == []
    zero = client.post("/console/templates", data=_row(clinic, capacity="0"))
    assert zero.status_code == 422 and "号源数应为1到200" in zero.text
    ok = client.post("/console/templates", data=_row(clinic))
    assert ok.status_code == 200 and "已添加出诊模板" in ok.text
    (row,) = templates.templates_of(db, clinic.hospital)
    assert (row.weekday, row.session, row.capacity, row.slot_minutes) == (2, "am", 24, 8)
    clash = client.post("/console/templates", data=_row(clinic))
    assert clash.status_code == 422 and "已有出诊模板" in clash.text
    other = make_department(db, clinic.hospital)
    mine = client.get("/console/templates", params={"department": clinic.department.code})
    assert f'data-template="{row.id}"' in mine.text
    theirs = client.get("/console/templates", params={"department": other.code})
    assert f'data-template="{row.id}"' not in theirs.text

    form = client.get(f"/console/templates/{row.id}/edit")
    assert form.status_code == 200 and 'value="24"' in form.text
    assert 'type="time"' not in form.text  # a 24-hour text field, the same in every browser
    odd = client.post(f"/console/templates/{row.id}", data=_row(clinic, start_time="25:00"))
    assert odd.status_code == 422 and 'data-field="start_time"' in odd.text
    assert 'value="25:00"' in odd.text
    changed = client.post(f"/console/templates/{row.id}", data=_row(
        clinic, capacity="30", weekday="4", start_time="8：30"))  # a Chinese IME's colon
    assert changed.status_code == 200 and "已修改出诊模板" in changed.text
    db.refresh(row)
    assert (row.weekday, row.capacity, row.start_time) == (4, 30, time(8, 30))
    gone = client.post(f"/console/templates/{row.id}/delete")
    assert gone.status_code == 200 and "已停用" in gone.text
    assert templates.templates_of(db, clinic.hospital) == []
    assert client.get(f"/console/templates/{row.id}/edit").status_code == 404


def test_import_reports_every_bad_row_and_imports_nothing_then_a_good_sheet(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    as_staff(client, db, Role.hospital_admin, clinic.hospital, NOW)
    bad = sheet([clinic.department.name, clinic.doctor.code, clinic.doctor.name, "专家门诊",
                 "", "20", ""],
                ["不存在科", "nobody", "", "", "", "二十", ""])
    r = client.post("/console/templates/import",
                    files={"file": ("排班.xlsx", bad, XLSX)})
    assert r.status_code == 422 and 'data-report="sheet"' in r.text
    assert 'data-line="3"' in r.text and 'data-line="2"' not in r.text
    assert "不存在科" in r.text and "二十" in r.text and "未导入任何内容" in r.text
    assert templates.templates_of(db, clinic.hospital) == []
    empty = client.post("/console/templates/import")
    assert empty.status_code == 422 and 'data-field="file"' in empty.text
    junk = client.post("/console/templates/import", files={"file": ("a.xlsx", b"nope", XLSX)})
    assert junk.status_code == 422 and ".xlsx" in junk.text

    good = sheet([clinic.department.name, clinic.doctor.code, clinic.doctor.name, "专家门诊",
                  "", "20", "12/10"])
    ok = client.post("/console/templates/import", files={"file": ("排班.xlsx", good, XLSX)},
                     follow_redirects=False)
    event = db.scalars(select(AuditEvent).where(
        AuditEvent.action == "schedule_template.import")).one()
    assert ok.headers["location"] == (
        f"/console/templates?hospital={clinic.hospital.code}&flash=imported&import={event.id}")
    ok = client.get(ok.headers["location"])
    assert ok.status_code == 200 and "已导入2个出诊时段" in ok.text
    assert len(templates.templates_of(db, clinic.hospital)) == 2

    export = client.get("/console/templates/export")
    assert export.status_code == 200 and export.headers["content-type"] == XLSX
    ws = load_workbook(io.BytesIO(export.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[1][1] == clinic.doctor.code and "20/10" in rows[1]


def test_generate_makes_the_sessions_of_the_coming_days_once(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    as_staff(client, db, Role.hospital_admin, clinic.hospital, NOW)
    client.post("/console/templates", data=_row(clinic, weekday="3"))
    start = DAY - timedelta(days=13)  # a Tuesday; two Wednesdays in the next 14 days

    def count() -> int:
        return db.scalar(select(func.count()).select_from(Schedule).where(
            Schedule.hospital_id == clinic.hospital.id, Schedule.day >= start)) or 0

    before = count()
    bad = client.post("/console/templates/generate", data={"start": "2020-01-01", "days": "0"})
    assert bad.status_code == 422
    assert 'data-field="start"' in bad.text and 'data-field="days"' in bad.text
    assert count() == before
    r = client.post("/console/templates/generate",
                    data={"start": start.isoformat(), "days": "14"})
    assert r.status_code == 200 and 'data-created>2<' in r.text
    assert count() == before + 2
    again = client.post("/console/templates/generate",
                        data={"start": start.isoformat(), "days": "14"})
    assert 'data-created>0<' in again.text and count() == before + 2


def test_bk2_bk4_policy_floors_are_shown_beside_their_fields_and_nothing_is_saved(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    as_staff(client, db, Role.hospital_admin, clinic.hospital, NOW)
    form = client.get("/console/policy")
    assert form.status_code == 200 and 'name="online_share" inputmode="decimal" maxlength="6" ' \
        'value="85"' in form.text

    def values(**kw: str) -> dict[str, str]:
        base = {"online_share": "85", "referral_share_of_online": "40", "priority_share": "5",
                "clinic_share": "5", "online_release_days": "7", "referral_release_days": "10",
                "referral_return_days": "3", "hold_minutes": "5", "waitlist_offer_minutes": "15",
                "late_after_minutes": "30", "check_in_opens_minutes": "120",
                "max_active_appointments": "5", "slot_minutes": "6",
                "online_release_time": "07:00", "same_day_open_time": "07:00",
                "next_day_cutoff": "20:00", "cancel_deadline_time": "16:00"}
        return base | kw

    low = client.post("/console/policy", data=values(online_share="70"))
    assert low.status_code == 422 and 'data-field="online_share"' in low.text
    assert "不得少于80%" in low.text and 'value="70"' in low.text
    referral = client.post("/console/policy", data=values(referral_share_of_online="30"))
    assert referral.status_code == 422 and 'data-field="referral_share_of_online"' in referral.text
    typed = client.post("/console/policy", data=values(hold_minutes="五", next_day_cutoff="25"))
    assert 'data-field="hold_minutes"' in typed.text
    assert 'data-field="next_day_cutoff"' in typed.text
    for odd in ("²", "１５"):  # int() would refuse the one and read the other
        r = client.post("/console/policy", data=values(hold_minutes=odd))
        assert r.status_code == 422 and 'data-field="hold_minutes"' in r.text, odd
    both = client.post("/console/policy", data=values(online_share="70",
                                                      referral_share_of_online="30"))
    assert both.status_code == 422  # every broken floor at once, each beside its field
    assert 'data-field="online_share"' in both.text
    assert 'data-field="referral_share_of_online"' in both.text
    for odd in ("nan", "inf", "-inf"):
        r = client.post("/console/policy", data=values(online_share=odd))
        assert r.status_code == 422 and "请填写0到100之间的数字" in r.text, odd
    bound = client.post("/console/policy", data=values(online_release_days="200"))
    assert 'data-field="online_release_days"' in bound.text and "不能大于90" in bound.text
    assert service.policy_for(db, clinic.hospital.id)[0].online_share == 0.85

    assert 'type="time"' not in form.text and 'name="next_day_cutoff"' in form.text
    ok = client.post("/console/policy", data=values(online_share="90",
                                                    referral_share_of_online="50",
                                                    same_day_open_time="7:30",
                                                    next_day_cutoff="20：30"))
    assert ok.status_code == 200 and "号池设置已保存" in ok.text
    stored = service.policy_for(db, clinic.hospital.id)[0]
    assert (stored.online_share, stored.referral_share_of_online) == (0.9, 0.5)
    assert (stored.same_day_open_time, stored.next_day_cutoff) == (time(7, 30), time(20, 30))


FORGED = "排班系统已迁移，请点击 http://evil.example 重新登录"


def test_admin_pages_show_no_text_a_link_brings(client: TestClient, db: Session,
                                                clinic: Clinic) -> None:
    as_staff(client, db, Role.hospital_admin, clinic.hospital, NOW)
    other = make_hospital(db)
    dept = make_department(db, other)
    doctor = make_practitioner(db, other, dept)
    theirs = templates.import_sheet(db, hospital=other, by=CLI, content=sheet(
        [dept.name, doctor.code, doctor.name, "专家门诊", "", "20", ""]))
    not_an_import = audit.record(db, CLI, action="schedule_template.add", patient_id=None,
                                 detail={"hospital": clinic.hospital.code, "sessions": 500})
    db.commit()
    for path in ("/console/templates", "/console/policy"):
        for query in ({"flash": FORGED}, {"flash": "imported", "import": FORGED},
                      {"flash": "imported"}, {"flash": FORGED, "import": "2"},
                      {"flash": "imported", "count": "500"},
                      {"flash": "imported", "import": str(theirs.event_id)},
                      {"flash": "imported", "import": str(not_an_import.id)},
                      {"flash": "imported", "import": "99999999999999999999"}):
            r = client.get(path, params=query)
            assert r.status_code == 200 and FORGED not in r.text, (path, query)
            assert "已导入" not in r.text and 'class="flash ok"' not in r.text, (path, query)
    for path, flash, text in (("/console/templates", "added", "已添加出诊模板"),
                              ("/console/templates", "changed", "已修改出诊模板"),
                              ("/console/templates", "retired", "已停用该出诊模板"),
                              ("/console/policy", "saved", "号池设置已保存")):
        assert text in client.get(path, params={"flash": flash}).text, flash
