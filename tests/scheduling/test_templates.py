"""Weekly templates, the Excel sheet and generation over the working calendar."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.org import calendar
from onetrip.org.rules import DayStatus, OverrideKind
from onetrip.scheduling import demo, service, templates
from onetrip.scheduling.models import Appointment, Schedule, ScheduleTemplate, Slot
from onetrip.scheduling.rules import SessionOfDay
from onetrip.scheduling.templates import TemplateSheetInvalid, column_title
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.conftest import CREATED, Clinic


def sheet_with(header: list[str], *rows: list[object]) -> bytes:
    """An .xlsx with the fixed columns, then these session columns, and the rows."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["科室", "医生工号", "医生", "级别", "诊室", *header])
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def sheet(*rows: list[object]) -> bytes:
    return sheet_with([column_title(1, SessionOfDay.am), column_title(3, SessionOfDay.pm)],
                      *rows)


def test_a_good_sheet_replaces_the_doctors_templates(db: Session, clinic: Clinic) -> None:
    content = sheet([clinic.department.name, clinic.doctor.code, clinic.doctor.name,
                     "专家门诊", "", "20", "12/10"])
    assert templates.import_sheet(db, hospital=clinic.hospital, content=content).sessions == 2
    rows = templates.templates_of(db, clinic.hospital)
    assert {(t.weekday, t.session, t.capacity, t.slot_minutes) for t in rows} == {
        (1, "am", 20, 10), (3, "pm", 12, 10)}
    again = sheet([clinic.department.code, clinic.doctor.code, "", "", "", "", "30"])
    templates.import_sheet(db, hospital=clinic.hospital, content=again)
    (only,) = templates.templates_of(db, clinic.hospital)
    assert (only.weekday, only.session, only.capacity) == (3, "pm", 30)


def test_every_bad_row_is_reported_and_nothing_changes(db: Session, clinic: Clinic) -> None:
    content = sheet(
        ["不存在科", clinic.doctor.code, "", "", "", "20", ""],
        [clinic.department.name, "nobody", "", "", "", "20", ""],
        [clinic.department.name, clinic.doctor.code, "别人", "", "", "20", ""],
        [clinic.department.name, clinic.doctor.code, "", "超级门诊", "", "二十", ""],
    )
    with pytest.raises(TemplateSheetInvalid) as err:
        templates.import_sheet(db, hospital=clinic.hospital, content=content)
    lines = [(e["line"], e["error"]) for e in err.value.detail]
    assert [n for n, _ in lines] == [2, 3, 4, 5, 5]
    assert "二十" in lines[-1][1] and "超级门诊" in lines[-2][1]
    assert templates.templates_of(db, clinic.hospital) == []


def test_not_an_excel_file_is_a_clear_error(db: Session, clinic: Clinic) -> None:
    with pytest.raises(TemplateSheetInvalid, match="xlsx"):
        templates.import_sheet(db, hospital=clinic.hospital, content=b"name,age\n")


def test_generation_skips_closed_and_unknown_days_and_runs_once(
        db: Session, clinic: Clinic) -> None:
    start = date(2026, 12, 28)  # Mon 28 Dec 2026 .. Sun 10 Jan 2027
    for weekday in range(1, 8):
        db.add(ScheduleTemplate(hospital_id=clinic.hospital.id,
                                department_id=clinic.department.id,
                                practitioner_id=clinic.doctor.id, weekday=weekday,
                                session="am", start_time=service.SESSION_STARTS[
                                    SessionOfDay.am], slot_minutes=10, capacity=12,
                                service_level="expert"))
    calendar.set_override(db, day=date(2026, 12, 30), kind=OverrideKind.closed,
                          name="院内停诊", hospital=clinic.hospital)
    calendar.set_override(db, day=date(2027, 1, 4), kind=OverrideKind.workday,
                          region_id=clinic.hospital.region_id)
    report = service.generate_from_templates(db, hospital=clinic.hospital, start=start,
                                             end=start + timedelta(days=13), now=CREATED)
    # 2026: 28, 29, 31 Dec open (30 closed); 2027 has no data except the ruled 4 Jan.
    days = sorted(db.scalars(select(Schedule.day).where(
        Schedule.hospital_id == clinic.hospital.id, Schedule.day >= start)))
    assert days == [date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 31),
                    date(2027, 1, 4)]
    assert report.created == 4 and "院内停诊" in report.skipped_days[date(2026, 12, 30)]
    assert "2027" in report.skipped_days[date(2027, 1, 5)]
    again = service.generate_from_templates(db, hospital=clinic.hospital, start=start,
                                            end=start + timedelta(days=13), now=CREATED)
    assert again.created == 0 and again.existing == 4
    # This hospital's only: the demo region's sessions run 14 days from the real today.
    slots = db.scalar(select(func.count()).select_from(Slot).join(Schedule).where(
        Schedule.hospital_id == clinic.hospital.id, Schedule.day >= start))
    assert slots == 4 * 12


def test_export_round_trips_through_import(db: Session, clinic: Clinic) -> None:
    content = sheet([clinic.department.name, clinic.doctor.code, clinic.doctor.name,
                     "专家门诊", "", "20/9", ""])
    templates.import_sheet(db, hospital=clinic.hospital, content=content)
    exported = templates.export_sheet(db, clinic.hospital)
    templates.import_sheet(db, hospital=clinic.hospital, content=exported)
    (t,) = templates.templates_of(db, clinic.hospital)
    assert (t.weekday, t.session, t.capacity, t.slot_minutes, t.service_level) == (
        1, "am", 20, 9, "expert")


def test_the_demo_rules_the_dates_of_a_year_without_official_data(
        db: Session, clinic: Clinic) -> None:
    # From late December the demo fortnight reaches a year whose official calendar the
    # library does not know yet: those dates are unknown (never guessed for a real
    # hospital), so the demo rules them itself, its clinic weekdays open, and says so.
    start = date(2035, 1, 1)
    end = start + timedelta(days=13)
    assert {d.status for d in calendar.clinic_days(db, clinic.hospital, start, end)} == {
        DayStatus.unknown}
    ruled = demo.rule_unknown_days(db, clinic.hospital, start, end)
    days = calendar.clinic_days(db, clinic.hospital, start, end)
    open_days = [d for d in days if d.day.isoweekday() in clinic.hospital.clinic_weekdays]
    assert ruled == len(open_days) > 0
    assert all(d.status is DayStatus.clinic and demo.PROVISIONAL in d.reason
               for d in open_days)
    assert all(d.status is DayStatus.unknown for d in days if d not in open_days)
    assert demo.rule_unknown_days(db, clinic.hospital, start, end) == 0  # ruled once


def test_demo_region_has_two_weeks_of_sessions(db: Session) -> None:
    count = db.scalar(select(func.count()).select_from(Schedule))
    assert count and count > 1000
    days = db.scalar(select(func.count(func.distinct(Schedule.day))))
    assert days and days >= 10


def test_demo_bookings_keep_the_per_patient_limits_and_leave_demo_sign_ins_room(
        db: Session) -> None:
    """BK-8 holds in the demo too: nobody holds more active appointments than a hospital
    allows, and a patient a demo phone account acts for can still book (a tester signing
    in was refused with 有效预约最多5个)."""
    from onetrip.db import utcnow
    from onetrip.identity.models import FamilyMember
    from onetrip.scheduling.rules import ACTIVE_STATUSES

    limit = min(service.policy_for(db, h)[0].max_active_appointments
                for h in db.scalars(select(Schedule.hospital_id).distinct()))
    # counted as the engine counts them: active, from twelve hours ago on
    held = dict(db.execute(select(Appointment.patient_id, func.count()).where(
        Appointment.status.in_([s.value for s in ACTIVE_STATUSES]),
        Appointment.start_at > utcnow() - timedelta(hours=12))
        .group_by(Appointment.patient_id)).all())
    assert held and max(held.values()) <= limit
    signed_in = set(db.scalars(select(FamilyMember.patient_id)))
    assert signed_in and all(held.get(p, 0) <= limit - 3 for p in signed_in)


def _with_sheet_xml(content: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The workbook with its sheet's XML changed (openpyxl reads a sheet only as it goes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            z.writestr(name, edit(data) if name.startswith("xl/worksheets/") else data)
    return out.getvalue()


@pytest.mark.parametrize("edit", [
    lambda x: x.replace(b"</sheetData>", b'<row r="9"><c r="A9"</sheetData>'),  # cut short
    lambda x: x.replace(b"</sheetData>", b'<row r="9"><c r="A9" t="n"><v>abc</v></c></row>'
                                         b"</sheetData>"),  # a number cell that is none
    lambda x: x.replace(b"</sheetData>", b'<row r="9"><c r="ZZZZ9"><v>1</v></c></row>'
                                         b"</sheetData>"),  # no such column
], ids=["truncated", "number-not-a-number", "bad-reference"])
def test_a_damaged_sheet_is_a_clear_error(db: Session, clinic: Clinic,
                                          edit: Callable[[bytes], bytes]) -> None:
    good = sheet([clinic.department.name, clinic.doctor.code, "", "", "", "20", ""])
    with pytest.raises(TemplateSheetInvalid, match="xlsx"):
        templates.import_sheet(db, hospital=clinic.hospital,
                               content=_with_sheet_xml(good, edit))
    assert templates.templates_of(db, clinic.hospital) == []


def test_a_cell_in_full_width_digits_is_reported_like_any_other_bad_cell(
        db: Session, clinic: Clinic) -> None:
    """Numbers are read in ASCII digits, as on every form (regex ``\\d`` took ２８/７)."""
    content = sheet([clinic.department.name, clinic.doctor.code, "", "", "", "２８/７", ""],
                    [clinic.department.name, clinic.doctor.code, "", "", "", "", "٢٠"])
    with pytest.raises(TemplateSheetInvalid) as err:
        templates.import_sheet(db, hospital=clinic.hospital, content=content)
    assert [(e["line"], "应为号源数" in e["error"]) for e in err.value.detail] == [
        (2, True), (3, True)]
    assert templates.templates_of(db, clinic.hospital) == []


def test_session_columns_are_read_under_their_everyday_titles(
        db: Session, clinic: Clinic) -> None:
    """Sheets say 星期二上午 or 周五晚上 as often as 周二上午 / 周五晚间; a remarks column is
    no session and is left alone."""
    content = sheet_with(["星期二上午", "周五晚上", "礼拜天下午", "备注"],
                          [clinic.department.name, clinic.doctor.code, "", "", "", "20", "10",
                           "8", "节假日另行通知"])
    assert templates.import_sheet(db, hospital=clinic.hospital, content=content).sessions == 3
    assert {(t.weekday, t.session, t.capacity)
            for t in templates.templates_of(db, clinic.hospital)} == {
        (2, "am", 20), (5, "evening", 10), (7, "pm", 8)}


def test_a_column_that_names_no_session_is_reported_not_dropped(
        db: Session, clinic: Clinic) -> None:
    content = sheet_with(["周一上午", "周三中午"],
                          [clinic.department.name, clinic.doctor.code, "", "", "", "20", "40"])
    with pytest.raises(TemplateSheetInvalid) as err:
        templates.import_sheet(db, hospital=clinic.hospital, content=content)
    [(line, error)] = [(e["line"], e["error"]) for e in err.value.detail]
    assert line == 1 and "周三中午" in error
    assert templates.templates_of(db, clinic.hospital) == []


def test_an_adjusted_working_weekend_without_its_weekday_templates_is_reported(
        db: Session) -> None:
    """2026-01-04, a Sunday, is a working day in lieu of the New Year holiday (调休上班). A
    hospital whose templates run Monday to Friday gets no sessions that day; the report
    says so, so that the schedule office adds them, instead of the day passing unseen."""
    h = make_hospital(db, clinic_weekdays=[1, 2, 3, 4, 5])
    dept = make_department(db, h)
    doc = make_practitioner(db, h, dept)
    for weekday in range(1, 6):
        db.add(ScheduleTemplate(hospital_id=h.id, department_id=dept.id,
                                practitioner_id=doc.id, weekday=weekday, session="am",
                                start_time=service.SESSION_STARTS[SessionOfDay.am],
                                slot_minutes=10, capacity=12, service_level="general"))
    report = service.generate_from_templates(db, hospital=h, start=date(2026, 1, 1),
                                             end=date(2026, 1, 9), now=CREATED)
    assert report.created == 5  # Monday 5 to Friday 9 January
    assert "调休" in report.skipped_days[date(2026, 1, 4)]
    assert "周日" in report.skipped_days[date(2026, 1, 4)]
    assert date(2026, 1, 5) not in report.skipped_days
