"""HTML pages of the organisation domain: hospitals, departments, doctors, search, calendar."""

from __future__ import annotations

import calendar as stdcal
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.deps import DbSession, OptionalPrincipal
from onetrip.errors import InvalidInput, OnetripError, PermissionDenied
from onetrip.identity.rules import Role, may_administer_hospital
from onetrip.identity.service import Principal
from onetrip.org import calendar
from onetrip.org import service as org_service
from onetrip.org.models import CalendarOverride, Hospital
from onetrip.org.rules import OVERRIDE_KIND_LABELS, OverrideKind
from onetrip.web import link_int, render_page

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, db: DbSession) -> Response:
    hospitals = org_service.list_hospitals(db)
    return render_page(request, "home.html", {"hospitals": hospitals})


@router.get("/search")
def search_page(request: Request, db: DbSession,
                q: Annotated[str, Query(max_length=50)] = "",
                hospital: str | None = None) -> Response:
    h = org_service.access_hospital(db, hospital) if hospital else None
    found = org_service.search(db, q, hospital=h)
    codes = {x.id: x for x in org_service.list_hospitals(db)}
    ctx = {"q": q, "found": found, "hospitals_by_id": codes, "scope": h}
    name = "search_results.html" if request.headers.get("hx-request") == "true" else "search.html"
    return render_page(request, name, ctx)


@router.get("/hospitals/{code}")
def hospital_page(code: str, request: Request, db: DbSession) -> Response:
    hospital = org_service.access_hospital(db, code)
    departments = org_service.list_departments(db, hospital)
    experts = [p for p in org_service.list_practitioners(db, hospital=hospital)
               if p.title in ("chief_physician", "associate_chief_physician")]
    today = utcnow().astimezone(get_settings().tz).date()
    return render_page(request, "hospital.html", {
        "hospital": hospital,
        "roots": [d for d in departments if d.parent_id is None],
        "experts": experts[:12],
        "fees": org_service.service_level_fees(db, hospital),
        "today": calendar.clinic_day(db, hospital, today),
    })


@router.get("/hospitals/{code}/departments/{dept_code}")
def department_page(code: str, dept_code: str, request: Request, db: DbSession) -> Response:
    hospital = org_service.access_hospital(db, code)
    dept = org_service.access_department(db, hospital, dept_code)
    practitioners = org_service.list_practitioners(db, hospital=hospital, department=dept)
    return render_page(request, "department.html",
                       {"hospital": hospital, "dept": dept, "practitioners": practitioners})


@router.get("/hospitals/{code}/practitioners/{prac_code}")
def practitioner_page(code: str, prac_code: str, request: Request, db: DbSession) -> Response:
    hospital = org_service.access_hospital(db, code)
    prac = org_service.access_practitioner(db, hospital, prac_code)
    return render_page(request, "practitioner.html", {"hospital": hospital, "p": prac})


# --- calendar administration -------------------------------------------------------------


def _calendar_admin(principal: OptionalPrincipal) -> Principal:
    """Hospital and regional admins only; others are sent to sign in or refused."""
    if principal is None:
        raise _SignInRequired()
    if principal.role not in (Role.hospital_admin, Role.regional_admin):
        raise PermissionDenied()
    return principal


class _SignInRequired(OnetripError):
    code = "not_authenticated"
    http_status = 401
    message = "请先以管理员身份登录"


CalendarAdmin = Annotated[Principal, Depends(_calendar_admin)]


def _admin_hospital(db: DbSession, principal: Principal, code: str | None) -> Hospital:
    if code is None:
        if principal.hospital_id is None:
            hospitals = org_service.list_hospitals(db)
            if not hospitals:
                raise InvalidInput("尚无医院")
            return hospitals[0]
        hospital = db.get(Hospital, principal.hospital_id)
        assert hospital is not None
        return hospital
    hospital = org_service.access_hospital(db, code)
    if not may_administer_hospital(principal.role, principal.hospital_id, hospital.id):
        raise PermissionDenied()
    return hospital


def _calendar_flash(db: Session, hospital: Hospital, flash: str, override: str,
                    count: str) -> str | None:
    """The message after a change, from a code: a set date is read from the ruling the link
    names (this hospital's or its region's), an import's count is a checked whole number,
    anything else a link brings shows nothing."""
    if flash == "set":
        row_id = link_int(override)
        row = db.get(CalendarOverride, row_id) if row_id is not None else None
        if row is None or not (row.hospital_id == hospital.id
                                or row.region_id == hospital.region_id):
            return None
        return f"已设定 {row.day.isoformat()}：{OVERRIDE_KIND_LABELS[OverrideKind(row.kind)]}"
    if flash == "imported":
        n = link_int(count)
        return f"已导入 {n} 个日期" if n is not None else None
    return {"deleted": "已删除该日设定"}.get(flash)


@router.get("/admin/calendar")
def calendar_page(request: Request, db: DbSession, principal: CalendarAdmin,
                  hospital: str | None = None,
                  year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                  month: Annotated[int | None, Query(ge=1, le=12)] = None,
                  flash: str = "", override: str = "", count: str = "") -> Response:
    h = _admin_hospital(db, principal, hospital)
    today = utcnow().astimezone(get_settings().tz).date()
    year, month = year or today.year, month or today.month
    last = stdcal.monthrange(year, month)[1]
    days = calendar.clinic_days(db, h, date(year, month, 1), date(year, month, last))
    prev_m = (year, month - 1) if month > 1 else (year - 1, 12)
    next_m = (year, month + 1) if month < 12 else (year + 1, 1)
    return render_page(request, "admin_calendar.html", {
        "hospital": h, "year": year, "month": month, "days": days,
        "lead": date(year, month, 1).isoweekday() - 1,
        "prev": prev_m, "next": next_m,
        "overrides": calendar.list_overrides(db, hospital=h, year=year),
        "region_overrides": calendar.list_overrides(db, region_id=h.region_id, year=year),
        "missing_years": calendar.years_without_data(db, h, [today.year, today.year + 1]),
        "kinds": OVERRIDE_KIND_LABELS, "flash": _calendar_flash(db, h, flash, override, count),
        "hospitals": org_service.list_hospitals(db) if principal.role is Role.regional_admin
        else [h],
        "can_region": principal.role is Role.regional_admin,
    })


def _back(h: Hospital, day: date, flash: str, **values: int) -> RedirectResponse:
    """Back to the month of ``day`` with a flash code and the ids or counts it reads."""
    from urllib.parse import urlencode

    query = urlencode({"hospital": h.code, "year": day.year, "month": day.month,
                       "flash": flash, **values})
    return RedirectResponse(f"/admin/calendar?{query}", status_code=303)


@router.post("/admin/calendar/overrides")
def add_override(db: DbSession, principal: CalendarAdmin, hospital: Annotated[str, Form()],
                 day: Annotated[str, Form(max_length=20)], kind: Annotated[OverrideKind, Form()],
                 name: Annotated[str, Form(max_length=100)] = "",
                 scope: Annotated[str, Form(pattern="^(hospital|region)$")] = "hospital",
                 ) -> Response:
    h = _admin_hospital(db, principal, hospital)
    on = calendar.parse_day(day.strip())
    if on is None:
        raise calendar.CalendarDayInvalid(detail={"day": day})
    who = f"page:{principal.label or principal.role.value}"
    if scope == "region":
        if principal.role is not Role.regional_admin:
            raise PermissionDenied("只有区域管理员可以设定全区域日历")
        row = calendar.set_override(db, day=on, kind=kind, name=name, region_id=h.region_id,
                                    source=who)
    else:
        row = calendar.set_override(db, day=on, kind=kind, name=name, hospital=h, source=who)
    return _back(h, on, "set", override=row.id)


@router.post("/admin/calendar/overrides/{override_id}/delete")
def remove_override(override_id: int, db: DbSession, principal: CalendarAdmin,
                    hospital: Annotated[str, Form()]) -> Response:
    h = _admin_hospital(db, principal, hospital)
    day = calendar.delete_override(db, override_id=override_id, hospital=h,
                                   include_region=principal.role is Role.regional_admin)
    return _back(h, day, "deleted")


#: A year of rulings is a few kilobytes.
MAX_CALENDAR_BYTES = 1_000_000


@router.post("/admin/calendar/import")
async def import_calendar(db: DbSession, principal: CalendarAdmin,
                          hospital: Annotated[str, Form()],
                          file: Annotated[UploadFile, File()],
                          scope: Annotated[str, Form(pattern="^(hospital|region)$")] = "hospital",
                          ) -> Response:
    h = _admin_hospital(db, principal, hospital)
    raw = await file.read(MAX_CALENDAR_BYTES + 1)
    if len(raw) > MAX_CALENDAR_BYTES:  # refused whole: a file cut at the limit loses dates
        raise calendar.CalendarImportInvalid("文件过大：日历文件不能超过1MB，每行一个日期",
                                             detail={"limit_bytes": MAX_CALENDAR_BYTES})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise calendar.CalendarImportInvalid("文件编码无法识别，请保存为UTF-8") from exc
    source = f"file:{file.filename or 'upload'}"
    if scope == "region":
        if principal.role is not Role.regional_admin:
            raise PermissionDenied("只有区域管理员可以导入全区域日历")
        count = calendar.import_overrides(db, text, region_id=h.region_id, source=source)
    else:
        count = calendar.import_overrides(db, text, hospital=h, source=source)
    first = calendar.parse_calendar_csv(text)[0].day
    return _back(h, first, "imported", count=count)
