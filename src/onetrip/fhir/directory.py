"""Who offers care and where: Organization, Location, HealthcareService, Practitioner and
PractitionerRole over the org domain (read-only, public like the hospital pages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from onetrip.fhir import resources as fr
from onetrip.fhir.context import Context, Found, page, page_list
from onetrip.fhir.outcome import UnknownResource
from onetrip.fhir.params import Query, reference_int, resource_id, token
from onetrip.org.models import (
    Department,
    Hospital,
    Location,
    Practitioner,
    practitioner_department,
)


def _get(ctx: Context, model: Any, ident: str) -> Any:
    row = ctx.db.get(model, resource_id(ident))
    if row is None:
        raise UnknownResource(detail={"id": ident})
    return row


def _codes(query: Query, name: str) -> list[str]:
    return [token(v)[1] for v in query.all(name)]


def _orgs(query: Query, name: str = "organization") -> list[int]:
    return [reference_int(v, "Organization", name) for v in query.all(name)]


# --- Organization -----------------------------------------------------------------------


def read_organization(ctx: Context, ident: str) -> dict[str, Any]:
    return fr.organization(_get(ctx, Hospital, ident))


def search_organizations(ctx: Context, query: Query) -> Found:
    stmt = select(Hospital).options(selectinload(Hospital.region)).order_by(Hospital.id)
    if query.all("identifier"):
        stmt = stmt.where(Hospital.code.in_(_codes(query, "identifier")))
    if name := query.one("name"):
        stmt = stmt.where(or_(Hospital.name.contains(name, autoescape=True),
                              Hospital.short_name.contains(name, autoescape=True)))
    return page(ctx, query, stmt, lambda row: fr.organization(row[0]))


# --- Location ---------------------------------------------------------------------------


def read_location(ctx: Context, ident: str) -> dict[str, Any]:
    if ident.startswith("site-"):
        return fr.site_location(_get(ctx, Hospital, ident.removeprefix("site-")))
    loc = _get(ctx, Location, ident)
    return fr.location(loc, ctx.db.get_one(Hospital, loc.hospital_id))


def search_locations(ctx: Context, query: Query) -> Found:
    """Each hospital's site, then its campuses, buildings, floors and rooms."""
    hospitals = select(Hospital).order_by(Hospital.id)
    if orgs := _orgs(query):
        hospitals = hospitals.where(Hospital.id.in_(orgs))
    found: list[dict[str, Any]] = []
    name = query.one("name")
    for h in ctx.db.scalars(hospitals):
        if name is None or name in h.name:
            found.append(fr.site_location(h))
        rooms = select(Location).where(Location.hospital_id == h.id).order_by(Location.id)
        if name is not None:
            rooms = rooms.where(Location.name.contains(name, autoescape=True))
        found.extend(fr.location(loc, h) for loc in ctx.db.scalars(rooms))
    return page_list(query, found)


# --- HealthcareService ------------------------------------------------------------------


def read_healthcare_service(ctx: Context, ident: str) -> dict[str, Any]:
    return fr.healthcare_service(_get(ctx, Department, ident))


def search_healthcare_services(ctx: Context, query: Query) -> Found:
    stmt = (select(Department).options(selectinload(Department.hospital))
            .order_by(Department.hospital_id, Department.sort_order, Department.id))
    if orgs := _orgs(query):
        stmt = stmt.where(Department.hospital_id.in_(orgs))
    if codes := _codes(query, "specialty"):
        stmt = stmt.where(Department.code.in_(codes))
    if name := query.one("name"):
        stmt = stmt.where(Department.name.contains(name, autoescape=True))
    if query.one("active") == "true":
        stmt = stmt.where(Department.is_clinical)
    return page(ctx, query, stmt, lambda row: fr.healthcare_service(row[0]))


# --- Practitioner and PractitionerRole ----------------------------------------------------


def read_practitioner(ctx: Context, ident: str) -> dict[str, Any]:
    return fr.practitioner(_get(ctx, Practitioner, ident))


def search_practitioners(ctx: Context, query: Query) -> Found:
    stmt = (select(Practitioner).options(selectinload(Practitioner.departments))
            .order_by(Practitioner.id))
    if name := query.one("name"):
        stmt = stmt.where(or_(Practitioner.name.contains(name, autoescape=True),
                              Practitioner.search_keys.contains(name.lower(), autoescape=True)))
    if codes := [c.rpartition("/")[2] for c in _codes(query, "identifier")]:
        stmt = stmt.where(Practitioner.code.in_(codes))
    return page(ctx, query, stmt, lambda row: fr.practitioner(row[0]))


def read_practitioner_role(ctx: Context, ident: str) -> dict[str, Any]:
    pid, _, did = ident.partition("-")
    p, d = _get(ctx, Practitioner, pid), _get(ctx, Department, did)
    if d not in p.departments:
        raise UnknownResource(detail={"id": ident})
    return fr.practitioner_role(p, d)


def search_practitioner_roles(ctx: Context, query: Query) -> Found:
    link = practitioner_department.c
    stmt = (select(Practitioner, Department)
            .join(practitioner_department, link.practitioner_id == Practitioner.id)
            .join(Department, Department.id == link.department_id)
            .order_by(Practitioner.id, Department.id))
    if ids := [reference_int(v, "Practitioner", "practitioner")
               for v in query.all("practitioner")]:
        stmt = stmt.where(Practitioner.id.in_(ids))
    if orgs := _orgs(query):
        stmt = stmt.where(Department.hospital_id.in_(orgs))
    if codes := _codes(query, "specialty"):
        stmt = stmt.where(Department.code.in_(codes))
    if services := [reference_int(v, "HealthcareService", "service")
                    for v in query.all("service")]:
        stmt = stmt.where(Department.id.in_(services))
    return page(ctx, query, stmt, lambda row: fr.practitioner_role(row[0], row[1]))
