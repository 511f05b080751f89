"""Staff accounts page (工作人员账号) for hospital and regional admins: each account's role,
department and linked practitioner; link a doctor's account to the practitioner it is, or
give a department admin another department. Accounts are created on the server
(``onetrip identity staff-create``), where the password is shown once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import DbSession, OptionalPrincipal
from onetrip.errors import NotAuthenticated, OnetripError, PermissionDenied
from onetrip.identity import staff as staff_service
from onetrip.identity.models import Staff
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    DEPARTMENT_SCOPED,
    PRACTITIONER_ROLES,
    ROLE_LABELS,
    STAFF_ADMINS,
    Role,
)
from onetrip.org import service as org_service
from onetrip.org.models import Hospital
from onetrip.web import link_int, render_page

router = APIRouter(include_in_schema=False)


def staff_only(allowed: frozenset[Role]) -> Callable[[Principal | None], Principal]:
    """Staff pages: signed-out visitors get the sign-in link, other roles a refusal."""

    def check(principal: OptionalPrincipal) -> Principal:
        if principal is None:
            raise NotAuthenticated()
        if principal.role not in allowed:
            raise PermissionDenied()
        return principal

    return check


StaffAdmin = Annotated[Principal, Depends(staff_only(STAFF_ADMINS))]


def _ctx(db: Session, principal: Principal, hospital: Hospital) -> dict[str, Any]:
    departments = org_service.list_departments(db, hospital)
    doctors = org_service.list_practitioners(db, hospital=hospital)
    return {"principal": principal, "hospital": hospital,
            "rows": staff_service.list_staff(db, hospital),
            "departments": departments, "doctors": doctors,
            "dept_by_id": {d.id: d for d in departments},
            "doctor_by_id": {p.id: p for p in doctors},
            "ROLE_LABELS": {r.value: label for r, label in ROLE_LABELS.items()},
            "practitioner_roles": {r.value for r in PRACTITIONER_ROLES},
            "department_roles": {r.value for r in DEPARTMENT_SCOPED},
            "hospitals": org_service.list_hospitals(db)
            if principal.role is Role.regional_admin else [],
            "errors": {}, "values": {}}


def _updated_flash(db: Session, hospital: Hospital, flash: str, staff: str) -> str | None:
    """「已更新账号」 with the username read from the account the link names, if it is one
    of the hospital shown; anything else a link brings says nothing."""
    staff_id = link_int(staff)
    row = db.get(Staff, staff_id) if flash == "updated" and staff_id is not None else None
    if row is None or row.hospital_id != hospital.id:
        return None
    return f"已更新账号 {row.username}"


@router.get("/staff/accounts")
def accounts_page(request: Request, db: DbSession, principal: StaffAdmin,
                  hospital: Annotated[str | None, Query(max_length=40)] = None,
                  flash: str = "", staff: str = "") -> Response:
    h = staff_service.working_hospital(db, principal, hospital)
    return render_page(request, "staff_accounts.html",
                       {**_ctx(db, principal, h), "flash": _updated_flash(db, h, flash, staff)})


def _change(request: Request, db: Session, principal: Principal, staff_id: int,
            field: str, value: str) -> Response:
    staff: Staff = staff_service.access_staff(db, principal, staff_id)
    hospital = db.get_one(Hospital, staff.hospital_id)
    try:
        if field == "practitioner":
            staff_service.link_practitioner(db, by=principal, staff=staff,
                                            practitioner_code=value or None)
        else:
            staff_service.move_to_department(db, by=principal, staff=staff,
                                             department_code=value)
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        ctx = _ctx(db, principal, hospital)
        ctx["errors"] = {staff.id: exc.text}
        ctx["values"] = {staff.id: value}
        return render_page(request, "staff_accounts.html", ctx, status_code=422)
    return RedirectResponse("/staff/accounts?" + urlencode(
        {"hospital": hospital.code, "flash": "updated", "staff": staff.id}), status_code=303)


@router.post("/staff/accounts/{staff_id}/practitioner")
def link_practitioner(staff_id: int, request: Request, db: DbSession, principal: StaffAdmin,
                      practitioner: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Link a doctor's account to a practitioner of its hospital (empty: unlink)."""
    return _change(request, db, principal, staff_id, "practitioner", practitioner.strip())


@router.post("/staff/accounts/{staff_id}/department")
def set_department(staff_id: int, request: Request, db: DbSession, principal: StaffAdmin,
                   department: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Give a department admin another department of its hospital."""
    return _change(request, db, principal, staff_id, "department", department.strip())
