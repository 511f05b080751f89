"""Staff console (工作台): what every console page shares, and the console home.

Window clerks book, check in and mark no-shows (``console_window``); admins keep the weekly
templates, generate schedules and set the pool policy (``console_admin``), stop a clinic
or name a substitute (``console_stop``); doctors call their queue (``console_doctor``).
Every page checks the role and the hospital: a session of another hospital answers as if
it did not exist. Department admins and linked doctors also keep to their departments
(``scope``): another department's session is refused with ``outside_department``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.deps import DbSession, require_role
from onetrip.identity import service as identity_service
from onetrip.identity import staff as staff_service
from onetrip.identity.rules import CARE_STAFF, ROLE_LABELS, STAFF_ADMINS, Role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Location, Practitioner
from onetrip.scheduling import indicators, scope, service
from onetrip.scheduling.errors import ScheduleNotFound
from onetrip.scheduling.models import Schedule
from onetrip.scheduling.rules import CHANNEL_LABELS, POOL_LABELS, SESSION_LABELS, Pool, SessionOfDay
from onetrip.web import render_page

router = APIRouter(prefix="/console", include_in_schema=False)

#: BK-5: the window books from the window and priority pools; admins may stand in.
CLERKS = (Role.window, Role.hospital_admin)
#: Weekly templates, the Excel import and generation: department admins for their own.
ADMINS = (Role.department_admin, Role.hospital_admin, Role.regional_admin)
#: The pool policy is the hospital's (BK-2, BK-4): never a department's.
POLICY_ADMINS = (Role.hospital_admin, Role.regional_admin)
#: Stopping a clinic is done at the window too (a doctor calls in sick at 7:30).
STOPPERS = (Role.window, Role.department_admin, Role.hospital_admin, Role.regional_admin)
DOCTORS = (Role.doctor, Role.hospital_admin, Role.regional_admin)
STAFF = (Role.window, Role.doctor, Role.department_admin, Role.hospital_admin,
         Role.regional_admin)

Clerk = Annotated[Principal, Depends(require_role(*CLERKS))]
Admin = Annotated[Principal, Depends(require_role(*ADMINS))]
PolicyAdmin = Annotated[Principal, Depends(require_role(*POLICY_ADMINS))]
Stopper = Annotated[Principal, Depends(require_role(*STOPPERS))]
Doctor = Annotated[Principal, Depends(require_role(*DOCTORS))]
Staff = Annotated[Principal, Depends(require_role(*STAFF))]

#: What the navigation and the home page offer each role: (page, roles).
PAGES = {"home": STAFF, "window": CLERKS, "queue": DOCTORS, "sessions": STOPPERS,
         "templates": ADMINS, "policy": POLICY_ADMINS, "indicators": indicators.VIEWERS,
         "patients": tuple(CARE_STAFF), "accounts": tuple(STAFF_ADMINS)}

STATUS_LABELS = {"held": "锁号中", "booked": "已预约", "arrived": "已报到", "fulfilled": "已就诊",
                 "cancelled": "已取消", "noshow": "爽约", "expired": "已过期"}
SCHEDULE_STATUS_LABELS = {"open": "正常", "stopped": "已停诊", "substituted": "已替诊"}


def page(request: Request, name: str, principal: Principal, ctx: dict[str, Any],
         status_code: int = 200) -> Response:
    """Render a console page with its real status: htmx also swaps the 409 and 422 answers
    that carry a refusal to show in place (``responseHandling`` in web/templates/base.html)."""
    base = {"principal": principal, "role": principal.role.value, "ROLE_LABELS": ROLE_LABELS,
            "can": {name: principal.role in roles for name, roles in PAGES.items()},
            "STATUS_LABELS": STATUS_LABELS,
            "POOL_LABELS": {p.value: label for p, label in POOL_LABELS.items()},
            "SESSION_LABELS": {s.value: label for s, label in SESSION_LABELS.items()},
            "CHANNEL_LABELS": {c.value: label for c, label in CHANNEL_LABELS.items()},
            "SCHEDULE_STATUS_LABELS": SCHEDULE_STATUS_LABELS}
    return render_page(request, name, {**base, **ctx}, status_code=status_code)


def local_today(now: datetime) -> date:
    return now.astimezone(get_settings().tz).date()


def parse_day(value: str, default: date) -> tuple[date, str | None]:
    """A ``YYYY-MM-DD`` from a form or query, or the default with a message."""
    if not value.strip():
        return default, None
    try:
        return date.fromisoformat(value.strip()), None
    except ValueError:
        return default, "日期格式应为 年-月-日，如 2026-12-01"


_CLOCK = re.compile(r"^([01]?\d|2[0-3])[:：]([0-5]\d)$")


def parse_clock(value: str) -> time | None:
    """A 24-hour wall-clock time typed as 7:30, 07:30 or 7：30 (the colon of a Chinese
    IME); None when it is not one."""
    match = _CLOCK.match(value.strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


def console_hospital(db: Session, principal: Principal, code: str | None = None) -> Hospital:
    """The hospital a console page works on (a regional admin picks one)."""
    return staff_service.working_hospital(db, principal, code)


def access_console_schedule(db: Session, principal: Principal, schedule_id: int) -> Schedule:
    """A session of the principal's hospital; another hospital's answers ScheduleNotFound,
    another department's OutsideDepartment for department admins and linked doctors."""
    schedule = service.access_schedule(db, schedule_id)
    if principal.role is not Role.regional_admin and principal.hospital_id != schedule.hospital_id:
        raise ScheduleNotFound(detail={"schedule_id": schedule_id})
    scope.authorise_session(db, principal, schedule)
    return schedule


@dataclass(frozen=True)
class SessionView:
    """A session as the console lists it: who, where, when, and what is left per pool."""

    schedule: Schedule
    department: str
    doctor: str
    substitute: str
    room: str
    free: dict[str, int]

    @property
    def label(self) -> str:
        s = self.schedule
        return (f"{s.day.isoformat()} {SESSION_LABELS[SessionOfDay(s.session)]} "
                f"{self.department} {self.substitute or self.doctor}")

    @property
    def window_free(self) -> int:
        return sum(self.free.get(p.value, 0) for p in (Pool.window, Pool.priority, Pool.online))


def session_views(db: Session, schedules: list[Schedule], now: datetime) -> list[SessionView]:
    avail = service.availability(db, [s.id for s in schedules], now)
    out = []
    for s in schedules:
        dept = db.get_one(Department, s.department_id)
        doctor = db.get(Practitioner, s.practitioner_id) if s.practitioner_id else None
        sub = db.get(Practitioner, s.substitute_practitioner_id) \
            if s.substitute_practitioner_id else None
        room = db.get(Location, s.location_id) if s.location_id else None
        out.append(SessionView(s, dept.name, doctor.name if doctor else "普通号",
                               sub.name if sub else "", room.name if room else "",
                               avail.get(s.id, {})))
    return out


def session_view(db: Session, schedule: Schedule, now: datetime) -> SessionView:
    return session_views(db, [schedule], now)[0]


def scope_ctx(db: Session, principal: Principal) -> dict[str, Any]:
    """The department a department admin keeps and the doctor an account is linked to, for
    the page header."""
    return {"scope_department": db.get(Department, principal.department_id)
            if principal.department_id else None,
            "scope_doctor": scope.linked_practitioner(db, principal)}


def pickable_departments(departments: list[Department], allowed: frozenset[int] | None,
                         ) -> list[Department]:
    """The departments a picker offers: the top ones of the hospital, or of what a scoped
    account may see (its own department, not the whole hospital's tree)."""
    if allowed is None:
        return [d for d in departments if d.parent_id is None]
    return [d for d in departments if d.id in allowed and d.parent_id not in allowed]


def day_sessions(db: Session, principal: Principal, now: datetime, *, day: str,
                 department: str, hospital: str | None = None) -> dict[str, Any]:
    """A day's sessions of the console's hospital (one department if chosen; only its own
    departments' for a department admin or a linked doctor), with what the day and
    department pickers need; ``error`` says why a typed day was not understood."""
    h = console_hospital(db, principal, hospital)
    chosen, error = parse_day(day, local_today(now))
    departments = org_service.list_departments(db, h)
    work = scope.work_scope(db, principal)
    dept = next((d for d in departments if d.code == department and (
        work.departments is None or d.id in work.departments)), None)
    schedules = [s for s in service.list_schedules(db, hospital=h, day=chosen, department=dept)
                 if work.covers(s)]
    return {**scope_ctx(db, principal),
            "hospital": h, "day": chosen, "error": error, "department": department,
            "departments": pickable_departments(departments, work.departments),
            "sessions": session_views(db, schedules, now),
            "hospitals": org_service.list_hospitals(db)
            if principal.role is Role.regional_admin else []}


@dataclass(frozen=True)
class PatientView:
    """A patient as staff see one: name, masked document and phone, never the numbers."""

    id: int
    name: str
    gender: str
    birth_date: date
    document: str
    phone: str


def patient_view(db: Session, patient_id: int) -> PatientView | None:
    p = identity_service.get_patient(db, patient_id)
    if p is None:
        return None
    return PatientView(p.id, p.name, {"male": "男", "female": "女"}.get(p.gender, ""),
                       p.birth_date, identity_service.masked_id_number(p),
                       identity_service.masked_phone(p))


def patient_views(db: Session, patient_ids: set[int]) -> dict[int, PatientView]:
    out = {}
    for pid in patient_ids:
        view = patient_view(db, pid)
        if view is not None:
            out[pid] = view
    return out


@router.get("")
def console_home(request: Request, db: DbSession, principal: Staff) -> Response:
    """The console's front page: what this role can do today."""
    hospital = console_hospital(db, principal)
    names = scope_ctx(db, principal)
    return page(request, "console_home.html", principal, {
        **names, "hospital": hospital, "department": names["scope_department"],
        "doctor": names["scope_doctor"]})
