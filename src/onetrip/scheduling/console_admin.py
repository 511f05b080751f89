"""Weekly templates (出诊模板) and schedule generation from the console, for admins.

The Excel sheet hospitals already keep goes through ``templates.import_sheet``: the whole
sheet is checked first and any problem is reported row by row with nothing imported. Single
rows can be added, changed or retired here; ``service.generate_from_templates`` then makes
the sessions of the coming days, skipping days the working calendar closes. A department
admin sees and changes only its departments' templates (the services refuse the rest).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, Now
from onetrip.identity.service import Principal
from onetrip.numbers import parse_digits
from onetrip.org import service as org_service
from onetrip.org.models import Hospital, Location
from onetrip.org.rules import WEEKDAY_LABELS
from onetrip.scheduling import scope, service, templates
from onetrip.scheduling.console_pages import (
    Admin,
    console_hospital,
    local_today,
    page,
    parse_clock,
    parse_day,
    pickable_departments,
    scope_ctx,
)
from onetrip.scheduling.templates import TemplateFields, TemplateInvalid, TemplateSheetInvalid
from onetrip.web import link_int

router = APIRouter(prefix="/console/templates", include_in_schema=False)

MAX_SHEET_BYTES = 5_000_000
MAX_GENERATE_DAYS = 60
FORM_FIELDS = ("department_id", "practitioner_id", "weekday", "session", "start_time",
               "capacity", "slot_minutes", "service_level", "location_id")


def _choices(db: Session, principal: Principal, hospital: Hospital) -> dict[str, Any]:
    """The departments, doctors and rooms the forms offer (a department admin's own)."""
    managed = scope.managed_departments(db, principal)
    departments = [d for d in org_service.list_departments(db, hospital)
                   if managed is None or d.id in managed]
    doctors = [p for p in org_service.list_practitioners(db, hospital=hospital)
               if managed is None or any(d.id in managed for d in p.departments)]
    return {
        **scope_ctx(db, principal), "departments": departments, "managed": managed,
        "pickable": pickable_departments(departments, managed),
        "doctors": doctors,
        "rooms": list(db.scalars(select(Location).where(
            Location.hospital_id == hospital.id, Location.kind == "room")
            .order_by(Location.code))),
        "weekdays": list(enumerate(WEEKDAY_LABELS, start=1)),
    }


def _list_ctx(db: Session, principal: Principal, hospital: Hospital,
              now: datetime, department: str = "") -> dict[str, Any]:
    choices = _choices(db, principal, hospital)
    tomorrow = local_today(now) + timedelta(days=1)
    rows = templates.templates_of(db, hospital, choices["managed"])
    dept = next((d for d in choices["departments"] if d.code == department), None)
    if dept is not None:
        ids = {dept.id, *(c.id for c in dept.children)}
        rows = [t for t in rows if t.department_id in ids]
    return {**choices, "hospital": hospital, "rows": rows, "department": department,
            "dept_by_id": {d.id: d for d in choices["departments"]},
            "doctor_by_id": {p.id: p for p in org_service.list_practitioners(
                db, hospital=hospital)},
            "room_by_id": {r.id: r for r in choices["rooms"]},
            "hospitals": org_service.list_hospitals(db)
            if principal.role.value == "regional_admin" else [],
            "values": {"session": "am", "service_level": "general"}, "errors": {},
            "gen": {"start": tomorrow.isoformat(), "days": "14"}, "gen_errors": {},
            "sheet_errors": None, "report": None}


#: Flash codes after a change; a link brings a code, never the words shown.
FLASHES = {"added": "已添加出诊模板", "changed": "已修改出诊模板",
           "retired": "已停用该出诊模板（已生成的排班不受影响）"}


def _flash(db: Session, hospital: Hospital, flash: str, event: str) -> str | None:
    if flash == "imported":
        # The count is read from the import's audit row, never from the link.
        event_id = link_int(event)
        n = templates.imported_sessions(db, hospital, event_id) if event_id else None
        return f"已导入{n}个出诊时段" if n is not None else None
    return FLASHES.get(flash)


@router.get("")
def templates_page(request: Request, db: DbSession, principal: Admin, now: Now,
                   hospital: Annotated[str | None, Query(max_length=40)] = None,
                   department: Annotated[str, Query(max_length=40)] = "",
                   flash: str = "",
                   event: Annotated[str, Query(alias="import")] = "",
                   ) -> Response:
    """The weekly templates (one department at a time if chosen), import and generation."""
    h = console_hospital(db, principal, hospital)
    return page(request, "console_templates.html", principal,
                {**_list_ctx(db, principal, h, now, department),
                 "flash": _flash(db, h, flash, event)})


def _int(raw: str) -> int | None:
    raw = raw.strip()
    return parse_digits(raw) if len(raw) <= 6 else None


def read_fields(values: dict[str, str]) -> tuple[TemplateFields, dict[str, str]]:
    """The form as typed into TemplateFields, with a message for what cannot be read."""
    errors = {}
    start: time | None = None
    if values.get("start_time", "").strip():
        start = parse_clock(values["start_time"])
        if start is None:
            errors["start_time"] = "开始时间格式应为 时:分（24小时制），如 08:00"
    for name in ("capacity", "slot_minutes"):
        if _int(values.get(name, "")) is None:
            errors[name] = "请填写整数"
    fields = TemplateFields(
        department_id=_int(values.get("department_id", "")),
        practitioner_id=_int(values.get("practitioner_id", "")),
        weekday=_int(values.get("weekday", "")), session=values.get("session", ""),
        start_time=start, slot_minutes=_int(values.get("slot_minutes", "")),
        capacity=_int(values.get("capacity", "")),
        service_level=values.get("service_level", ""),
        location_id=_int(values.get("location_id", "")))
    return fields, errors


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k, ""))[:40] for k in FORM_FIELDS}


def _save(request: Request, db: Session, principal: Principal, hospital: Hospital,
          values: dict[str, str], now: datetime, template_id: int | None) -> Response:
    fields, unread = read_fields(values)
    errors = templates.template_problems(db, hospital, fields, template_id,
                                         scope.managed_departments(db, principal)) | unread
    if not errors:
        try:
            templates.save_template(db, hospital=hospital, fields=fields,
                                    template_id=template_id, by=principal)
        except TemplateInvalid as exc:
            errors = dict(exc.detail)
    if errors:
        if template_id is None:
            ctx = _list_ctx(db, principal, hospital, now)
            name = "console_templates.html"
        else:
            ctx = {**_choices(db, principal, hospital), "hospital": hospital,
                   "template_id": template_id}
            name = "console_template_form.html"
        return page(request, name, principal, {**ctx, "values": values, "errors": errors},
                    status_code=422)
    return RedirectResponse("/console/templates?" + urlencode(
        {"hospital": hospital.code, "flash": "changed" if template_id else "added"}),
        status_code=303)


@router.post("")
async def add_template(request: Request, db: DbSession, principal: Admin, now: Now,
                       hospital: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    h = console_hospital(db, principal, hospital)
    return _save(request, db, principal, h, await _form_values(request), now, None)


@router.get("/export")
def export(db: DbSession, principal: Admin,
           hospital: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The active templates as the Excel sheet (the same layout the import reads)."""
    h = console_hospital(db, principal, hospital)
    content = templates.export_sheet(db, h, scope.managed_departments(db, principal))
    return Response(content, media_type="application/vnd.openxmlformats-officedocument"
                    ".spreadsheetml.sheet", headers={
                        "Content-Disposition": f'attachment; filename="templates-{h.code}.xlsx"'})


@router.post("/import")
async def import_sheet(request: Request, db: DbSession, principal: Admin, now: Now,
                       file: Annotated[UploadFile | None, File()] = None,
                       hospital: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    """Upload the sheet: all rows or none; every problem is listed with its row."""
    h = console_hospital(db, principal, hospital)
    content = await file.read(MAX_SHEET_BYTES + 1) if file is not None else b""
    message, problems = "", None
    if not content:
        message = "请选择要导入的 .xlsx 排班表"
    elif len(content) > MAX_SHEET_BYTES:
        message = "文件超过5MB，请只保留出诊模板工作表"
    else:
        try:
            done = templates.import_sheet(db, hospital=h, content=content, by=principal)
        except TemplateSheetInvalid as exc:
            message = exc.text
            problems = exc.detail if isinstance(exc.detail, list) else None
        else:
            return RedirectResponse("/console/templates?" + urlencode(
                {"hospital": h.code, "flash": "imported", "import": done.event_id}),
                status_code=303)
    ctx = _list_ctx(db, principal, h, now)
    return page(request, "console_templates.html", principal,
                {**ctx, "sheet_message": message, "sheet_errors": problems or [],
                 "sheet_name": file.filename if file is not None else ""}, status_code=422)


@router.post("/generate")
def generate(request: Request, db: DbSession, principal: Admin, now: Now,
             start: Annotated[str, Form(max_length=20)] = "",
             days: Annotated[str, Form(max_length=6)] = "",
             hospital: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    """Sessions of the weekly templates for the coming days; closed days are skipped."""
    h = console_hospital(db, principal, hospital)
    today = local_today(now)
    first, day_error = parse_day(start, today)
    errors = {"start": day_error} if day_error else {}
    if not day_error and first < today:
        errors["start"] = "开始日期不能早于今天"
    count = _int(days)
    if count is None or not 1 <= count <= MAX_GENERATE_DAYS:
        errors["days"] = f"天数应为1到{MAX_GENERATE_DAYS}"
    ctx = _list_ctx(db, principal, h, now)
    ctx["gen"] = {"start": start, "days": days}
    if errors:
        return page(request, "console_templates.html", principal,
                    {**ctx, "gen_errors": errors}, status_code=422)
    assert count is not None
    report = service.generate_from_templates(db, hospital=h, start=first,
                                             end=first + timedelta(days=count - 1), now=now,
                                             by=principal)
    return page(request, "console_templates.html", principal,
                {**ctx, "report": report, "report_range": (first, count)})


@router.get("/{template_id}/edit")
def edit_page(template_id: int, request: Request, db: DbSession, principal: Admin,
              hospital: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    h = console_hospital(db, principal, hospital)
    row = templates.access_template(db, h, template_id, scope.managed_departments(db, principal))
    values = {"department_id": str(row.department_id),
              "practitioner_id": str(row.practitioner_id or ""), "weekday": str(row.weekday),
              "session": row.session, "start_time": row.start_time.strftime("%H:%M"),
              "capacity": str(row.capacity), "slot_minutes": str(row.slot_minutes),
              "service_level": row.service_level, "location_id": str(row.location_id or "")}
    return page(request, "console_template_form.html", principal, {
        **_choices(db, principal, h), "hospital": h, "template_id": row.id, "values": values,
        "errors": {}})


@router.post("/{template_id}")
async def edit(template_id: int, request: Request, db: DbSession, principal: Admin, now: Now,
               hospital: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    h = console_hospital(db, principal, hospital)
    templates.access_template(db, h, template_id, scope.managed_departments(db, principal))
    return _save(request, db, principal, h, await _form_values(request), now, template_id)


@router.post("/{template_id}/delete")
def delete(template_id: int, db: DbSession, principal: Admin,
           hospital: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    h = console_hospital(db, principal, hospital)
    templates.remove_template(db, hospital=h, template_id=template_id, by=principal)
    return RedirectResponse("/console/templates?" + urlencode(
        {"hospital": h.code, "flash": "retired"}), status_code=303)
