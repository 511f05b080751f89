"""Weekly templates (出诊模板) and the Excel sheet hospitals already keep.

The sheet has one row per doctor and one column per weekday and session, e.g.::

    科室      | 医生工号 | 医生   | 级别     | 诊室   | 周一上午 | 周一下午 | ... | 周日晚间
    心血管内科 | d0001    | 王建国 | 专家门诊 | mz3-301 | 20       |          | ... |

A cell holds the number of slots, optionally ``slots/minutes`` (``24/5``); an empty cell
means no clinic. The import checks every row and reports each problem with its row and
column; a sheet with any problem changes nothing. A good sheet replaces the templates of
the doctors it lists.

A department admin's sheet may hold only rows of its departments and their doctors (any
other row is a row error), and replaces only those doctors' templates in its departments.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import time
from typing import Any, NamedTuple

from openpyxl import Workbook, load_workbook
from sqlalchemy import select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from onetrip.errors import InvalidInput, NotFound
from onetrip.identity.models import AuditEvent
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Location, Practitioner
from onetrip.org.rules import SERVICE_LEVEL_LABELS, WEEKDAY_LABELS
from onetrip.scheduling.errors import OutsideDepartment
from onetrip.scheduling.models import ScheduleTemplate
from onetrip.scheduling.rules import SESSION_LABELS, SessionOfDay
from onetrip.scheduling.scope import managed_departments
from onetrip.scheduling.service import SESSION_STARTS, record_change

_LEVELS = {label: key for key, label in SERVICE_LEVEL_LABELS.items()} | {
    "普通": "general", "专科": "specialist", "专家": "expert", "特需": "special_needs"}
_CELL = re.compile(r"^\s*([0-9]{1,3})\s*(?:/\s*([0-9]{1,3}))?\s*$")  # ASCII digits, as on forms
FIXED = ["科室", "医生工号", "医生", "级别", "诊室"]
SESSIONS = [(d, s) for d in range(1, 8) for s in SessionOfDay]


def column_title(weekday: int, session: SessionOfDay) -> str:
    return f"{WEEKDAY_LABELS[weekday - 1]}{SESSION_LABELS[session]}"


_DAY_WORDS = "一二三四五六日"
_TITLE = re.compile(r"^(?:周|星期|礼拜)([一二三四五六日天])(上午|下午|晚上|晚间|夜间)$")
_TIME_WORDS = re.compile(r"周|星期|礼拜|午|晚|夜")
_SESSION_WORDS = {"上午": SessionOfDay.am, "下午": SessionOfDay.pm, "晚上": SessionOfDay.evening,
                  "晚间": SessionOfDay.evening, "夜间": SessionOfDay.evening}


def _session_columns(header: list[str],
                     ) -> tuple[dict[tuple[int, SessionOfDay], int], list[str]]:
    """The session columns of a header row (周二上午, and as sheets also write it: 星期二上午,
    礼拜天下午, 周五晚上) by position, and the problems of the titles that look like a session
    but name none (周三中午) or one named before: reported, never dropped with their numbers."""
    found: dict[tuple[int, SessionOfDay], int] = {}
    problems = []
    for i, title in enumerate(header):
        m = _TITLE.match(title.replace(" ", ""))
        if m:
            key = (_DAY_WORDS.index(m.group(1).replace("天", "日")) + 1,
                   _SESSION_WORDS[m.group(2)])
            if key in found:
                problems.append(f"列“{title}”与列“{header[found[key]]}”是同一出诊时段")
            found[key] = found.get(key, i)
        elif title not in FIXED and _TIME_WORDS.search(title):
            problems.append(f"列“{title}”不是出诊时段，应为“周一上午”“周三下午”“周五晚间”这样的标题")
    return found, problems


class TemplateSheetInvalid(InvalidInput):
    code = "template_sheet_invalid"
    message = "排班表有误，未导入任何内容"


@dataclass(frozen=True)
class TemplateRow:
    department_id: int
    practitioner_id: int
    location_id: int | None
    service_level: str
    weekday: int
    session: SessionOfDay
    capacity: int
    slot_minutes: int


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_sheet(db: Session, hospital: Hospital, content: bytes,
                departments: frozenset[int] | None = None) -> list[TemplateRow]:
    """Read and check a whole sheet; raises TemplateSheetInvalid listing every problem.

    ``departments``: a department admin's departments; a row of another department, or of
    a doctor who works in none of them, is refused."""
    try:
        sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        # Read-only mode parses the sheet's XML only now, row by row: a damaged sheet
        # (cut short, a number cell holding text, a cell reference past ZZZ) fails here.
        rows = list(sheet.iter_rows(values_only=True)) if sheet is not None else []
    except Exception as exc:  # openpyxl raises many kinds for a file that is not xlsx
        raise TemplateSheetInvalid("无法读取文件，请上传 .xlsx 格式的排班表") from exc
    if not rows:
        raise TemplateSheetInvalid("排班表为空")
    header = [_text(v) for v in rows[0]]
    errors: list[dict[str, Any]] = []
    missing = [c for c in FIXED if c not in header]
    if missing:
        raise TemplateSheetInvalid(f"缺少列：{'、'.join(missing)}",
                                   detail=[{"line": 1, "error": f"缺少列：{c}"} for c in missing])
    col = {name: header.index(name) for name in header if name}
    session_col, unknown = _session_columns(header)
    if unknown:
        raise TemplateSheetInvalid(detail=[{"line": 1, "error": e} for e in unknown])
    by_name = {d.name: d for d in org_service.list_departments(db, hospital)}
    by_name |= {d.code: d for d in by_name.values()}
    doctors = {p.code: p for p in org_service.list_practitioners(db, hospital=hospital)}
    rooms = {loc.code: loc for loc in db.scalars(select(Location).where(
        Location.hospital_id == hospital.id, Location.kind == "room"))}
    kept = _kept_elsewhere(db, hospital, departments)
    out: list[TemplateRow] = []
    seen: set[str] = set()
    for line, values in enumerate(rows[1:], start=2):
        cells = [_text(v) for v in values]
        if not any(cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = col.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        problems: list[str] = []
        dept = by_name.get(cell("科室"))
        if dept is None:
            problems.append(f"科室“{cell('科室')}”不存在")
        elif departments is not None and dept.id not in departments:
            problems.append(f"科室“{dept.name}”不属于本科室，不能导入")
        doctor = doctors.get(cell("医生工号"))
        if doctor is None:
            problems.append(f"医生工号“{cell('医生工号')}”不存在")
        elif cell("医生") and cell("医生") != doctor.name:
            problems.append(f"工号{doctor.code}对应的医生是{doctor.name}，不是{cell('医生')}")
        elif doctor.code in seen:
            problems.append(f"医生工号{doctor.code}重复出现")
        elif departments is not None and not {d.id for d in doctor.departments} & departments:
            problems.append(f"医生{doctor.name}（{doctor.code}）不是本科室医生")
        level = _LEVELS.get(cell("级别")) if cell("级别") else (
            doctor.service_level if doctor else "general")
        if level is None:
            problems.append(f"级别“{cell('级别')}”应为普通/专科/专家/特需门诊")
        room = rooms.get(cell("诊室")) if cell("诊室") else None
        if cell("诊室") and room is None:
            problems.append(f"诊室“{cell('诊室')}”不存在")
        sessions: list[tuple[int, SessionOfDay, int, int]] = []
        for (weekday, session), at in sorted(session_col.items()):
            raw = cells[at] if at < len(cells) else ""
            if not raw:
                continue
            m = _CELL.match(raw)
            if m is None or not (1 <= int(m.group(1)) <= 200) or (
                    m.group(2) and not 1 <= int(m.group(2)) <= 120):
                problems.append(f"{column_title(weekday, session)}“{raw}”应为号源数，"
                                "如 20 或 20/6（每号6分钟）")
                continue
            if doctor is not None and (doctor.id, weekday, session.value) in kept:
                problems.append(f"{doctor.name}{column_title(weekday, session)}已在其他科室出诊")
                continue
            sessions.append((weekday, session, int(m.group(1)), int(m.group(2) or 0)))
        if problems:
            errors.extend({"line": line, "error": p} for p in problems)
            continue
        assert dept is not None and doctor is not None and level is not None
        seen.add(doctor.code)
        for weekday, session, capacity, minutes in sessions:
            span = 210 if session is SessionOfDay.am else 180
            out.append(TemplateRow(dept.id, doctor.id, room.id if room else None, level,
                                   weekday, session, capacity,
                                   minutes or max(1, span // capacity)))
    if errors:
        raise TemplateSheetInvalid(detail=errors)
    if not out:
        raise TemplateSheetInvalid("排班表中没有任何出诊")
    return out


def _kept_elsewhere(db: Session, hospital: Hospital, departments: frozenset[int] | None,
                    ) -> set[tuple[int | None, int, str]]:
    """(doctor, weekday, session) of active templates a department admin's import keeps:
    those of departments it does not manage."""
    if departments is None:
        return set()
    return {(p, w, s) for p, w, s in db.execute(
        select(ScheduleTemplate.practitioner_id, ScheduleTemplate.weekday,
               ScheduleTemplate.session).where(
            ScheduleTemplate.hospital_id == hospital.id, ScheduleTemplate.active,
            ScheduleTemplate.department_id.not_in(departments)))}


def _in(departments: frozenset[int] | None) -> ColumnElement[bool]:
    """SQL: the template belongs to one of ``departments`` (true when None)."""
    return true() if departments is None else ScheduleTemplate.department_id.in_(departments)


class Imported(NamedTuple):
    """What a sheet import did: the weekly sessions it wrote, and its audit row (None when
    nobody is named to record it as)."""

    sessions: int
    event_id: int | None


#: The audit action of a sheet import; its detail names the hospital and the sessions.
IMPORT_ACTION = "schedule_template.import"


def import_sheet(db: Session, *, hospital: Hospital, content: bytes,
                 by: Principal | None = None) -> Imported:
    """Replace the templates of the doctors the sheet lists; all rows or none. A department
    admin replaces them within its departments only."""
    departments = managed_departments(db, by)
    rows = parse_sheet(db, hospital, content, departments)
    doctors = {r.practitioner_id for r in rows}
    db.execute(update(ScheduleTemplate).where(
        ScheduleTemplate.hospital_id == hospital.id, _in(departments),
        ScheduleTemplate.practitioner_id.in_(doctors)).values(active=False),
        execution_options={"synchronize_session": False})
    for r in rows:
        db.add(ScheduleTemplate(
            hospital_id=hospital.id, department_id=r.department_id,
            practitioner_id=r.practitioner_id, location_id=r.location_id, weekday=r.weekday,
            session=r.session.value, start_time=SESSION_STARTS[r.session],
            slot_minutes=r.slot_minutes, capacity=r.capacity, service_level=r.service_level))
    db.flush()
    event = record_change(db, by, IMPORT_ACTION, hospital=hospital.code,
                          doctors=len(doctors), sessions=len(rows))
    return Imported(len(rows), event.id if event is not None else None)


def imported_sessions(db: Session, hospital: Hospital, event_id: int) -> int | None:
    """How many weekly sessions the import recorded as ``event_id`` wrote, if that is an
    import into ``hospital``."""
    event = db.get(AuditEvent, event_id)
    if event is None or event.action != IMPORT_ACTION or \
            event.detail.get("hospital") != hospital.code:
        return None
    sessions = event.detail.get("sessions")
    return sessions if isinstance(sessions, int) else None


def templates_of(db: Session, hospital: Hospital,
                 departments: frozenset[int] | None = None) -> list[ScheduleTemplate]:
    """The active templates of a hospital (of some departments only, when given)."""
    return list(db.scalars(select(ScheduleTemplate).where(
        ScheduleTemplate.hospital_id == hospital.id, ScheduleTemplate.active,
        _in(departments))
        .order_by(ScheduleTemplate.practitioner_id, ScheduleTemplate.weekday,
                  ScheduleTemplate.session)))


def export_sheet(db: Session, hospital: Hospital,
                 departments: frozenset[int] | None = None) -> bytes:
    """The hospital's (or some departments') active templates in the layout the import
    reads."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "出诊模板"
    ws.append(FIXED + [column_title(d, s) for d, s in SESSIONS])
    by_doctor: dict[int, list[ScheduleTemplate]] = {}
    for t in templates_of(db, hospital, departments):
        if t.practitioner_id is not None:
            by_doctor.setdefault(t.practitioner_id, []).append(t)
    doctors = {p.id: p for p in org_service.list_practitioners(db, hospital=hospital)}
    dept_by_id = {d.id: d for d in org_service.list_departments(db, hospital)}
    rooms = {loc.id: loc.code for loc in db.scalars(select(Location).where(
        Location.hospital_id == hospital.id, Location.kind == "room"))}
    for pid, items in by_doctor.items():
        first = items[0]
        cells = {(t.weekday, SessionOfDay(t.session)): f"{t.capacity}/{t.slot_minutes}"
                 for t in items}
        ws.append([dept_by_id[first.department_id].name, doctors[pid].code, doctors[pid].name,
                   SERVICE_LEVEL_LABELS[first.service_level],
                   rooms.get(first.location_id or 0, "")]
                  + [cells.get(k, "") for k in SESSIONS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- one template row at a time (the console's weekly template page) -------------------


class TemplateInvalid(InvalidInput):
    code = "template_invalid"
    message = "出诊模板有误，未保存"


class TemplateNotFound(NotFound):
    code = "template_not_found"
    message = "未找到该出诊模板"


@dataclass(frozen=True)
class TemplateFields:
    """One weekly session as an admin enters it; ``None`` where the form left it empty."""

    department_id: int | None
    practitioner_id: int | None
    weekday: int | None
    session: str
    start_time: time | None
    slot_minutes: int | None
    capacity: int | None
    service_level: str
    location_id: int | None = None


def template_problems(db: Session, hospital: Hospital, f: TemplateFields,
                      template_id: int | None = None,
                      departments: frozenset[int] | None = None) -> dict[str, str]:
    """What is wrong with each field (same limits as the Excel sheet), by field name;
    ``departments``: a department admin's, the only ones it may use, with their doctors."""
    problems: dict[str, str] = {}
    dept = db.get(Department, f.department_id) if f.department_id else None
    if dept is None or dept.hospital_id != hospital.id:
        problems["department_id"] = "请选择本院科室"
    elif departments is not None and dept.id not in departments:
        problems["department_id"] = "只能选择本科室"
    doctor = db.get(Practitioner, f.practitioner_id) if f.practitioner_id else None
    if doctor is None or doctor.hospital_id != hospital.id:
        problems["practitioner_id"] = "请选择本院医生"
    elif departments is not None and not {d.id for d in doctor.departments} & departments:
        problems["practitioner_id"] = "只能选择本科室医生"
    if f.weekday is None or not 1 <= f.weekday <= 7:
        problems["weekday"] = "请选择星期"
    if f.session not in {s.value for s in SessionOfDay}:
        problems["session"] = "请选择上午、下午或晚间"
    if f.capacity is None or not 1 <= f.capacity <= 200:
        problems["capacity"] = "号源数应为1到200"
    if f.slot_minutes is None or not 1 <= f.slot_minutes <= 120:
        problems["slot_minutes"] = "每号分钟数应为1到120"
    if f.service_level not in SERVICE_LEVEL_LABELS:
        problems["service_level"] = "请选择门诊级别"
    if f.location_id is not None:
        room = db.get(Location, f.location_id)
        if room is None or room.hospital_id != hospital.id or room.kind != "room":
            problems["location_id"] = "请选择本院诊室"
    if not problems and doctor is not None:
        clash = db.scalar(select(ScheduleTemplate.id).where(
            ScheduleTemplate.hospital_id == hospital.id, ScheduleTemplate.active,
            ScheduleTemplate.practitioner_id == doctor.id,
            ScheduleTemplate.weekday == f.weekday, ScheduleTemplate.session == f.session,
            ScheduleTemplate.id != (template_id or 0)))
        if clash is not None:
            when = column_title(f.weekday or 1, SessionOfDay(f.session))
            problems["session"] = f"{doctor.name}{when}已有出诊模板"
    return problems


def access_template(db: Session, hospital: Hospital, template_id: int,
                    departments: frozenset[int] | None = None) -> ScheduleTemplate:
    """An active template of this hospital; raises TemplateNotFound, or OutsideDepartment
    for one of a department ``departments`` does not include."""
    row = db.get(ScheduleTemplate, template_id)
    if row is None or row.hospital_id != hospital.id or not row.active:
        raise TemplateNotFound(detail={"template_id": template_id})
    if departments is not None and row.department_id not in departments:
        raise OutsideDepartment(detail={"template_id": template_id})
    return row


def save_template(db: Session, *, hospital: Hospital, fields: TemplateFields,
                  template_id: int | None = None, by: Principal | None = None,
                  ) -> ScheduleTemplate:
    """Add a weekly session, or change one; raises TemplateInvalid with each field's problem.

    Generated schedules keep what they were; the change applies to days generated later.
    A department admin adds and changes only its departments' templates.
    """
    departments = managed_departments(db, by)
    row = access_template(db, hospital, template_id, departments) if template_id else None
    problems = template_problems(db, hospital, fields, template_id, departments)
    if problems:
        raise TemplateInvalid(detail=problems)
    f = fields
    assert f.department_id and f.weekday and f.slot_minutes and f.capacity  # checked above
    session = SessionOfDay(f.session)
    row = row or ScheduleTemplate(hospital_id=hospital.id)
    row.department_id, row.practitioner_id, row.location_id = (
        f.department_id, f.practitioner_id, f.location_id)
    row.weekday, row.session = f.weekday, session.value
    row.start_time = f.start_time or SESSION_STARTS[session]
    row.slot_minutes, row.capacity, row.service_level = f.slot_minutes, f.capacity, \
        f.service_level
    row.active = True
    db.add(row)
    db.flush()
    record_change(db, by, "schedule_template.update" if template_id else "schedule_template.add",
                  hospital=hospital.code, template_id=row.id)
    return row


def remove_template(db: Session, *, hospital: Hospital, template_id: int,
                    by: Principal | None = None) -> None:
    """Retire a weekly session; schedules already generated from it stay."""
    row = access_template(db, hospital, template_id, managed_departments(db, by))
    row.active = False
    db.flush()
    record_change(db, by, "schedule_template.remove", hospital=hospital.code,
                  template_id=template_id)
