"""/fhir: FHIR R4 (JSON) over the domain services. Thin: parse, call, shape the answer.

Reads and searches of the directory and of slots are public, as the hospital pages are;
Patient and Appointment need the bearer tokens of /api/v1. Every write ($hold, $book) goes
through scheduling.booking with the fairness gate and Idempotency-Key of the REST API.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Header, Request
from fastapi import Query as QueryParam
from fastapi.responses import JSONResponse, Response

from onetrip.deps import CurrentPrincipal, DbSession, Now, OptionalPrincipal, Units
from onetrip.errors import InvalidInput, OnetripError
from onetrip.fhir import bulk, directory, operations, patients, slots
from onetrip.fhir.capability import capability_statement
from onetrip.fhir.context import Context, Found
from onetrip.fhir.operations import FindRequest, Target
from onetrip.fhir.outcome import (
    FHIR_JSON,
    FhirResponse,
    UnknownResource,
    UnsupportedType,
)
from onetrip.fhir.params import Query, bundle, parse_instant, reference_int, searchset
from onetrip.scheduling.api import idempotent
from onetrip.scheduling.gate import admit_booking
from onetrip.scheduling.rules import Channel

router = APIRouter(prefix="/fhir", tags=["fhir"])
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

READERS: dict[str, Callable[[Context, str], dict[str, Any]]] = {
    "Patient": patients.read_patient,
    "Organization": directory.read_organization,
    "Location": directory.read_location,
    "HealthcareService": directory.read_healthcare_service,
    "Practitioner": directory.read_practitioner,
    "PractitionerRole": directory.read_practitioner_role,
    "Schedule": slots.read_schedule,
    "Slot": slots.read_slot,
    "Appointment": slots.read_appointment,
}
SEARCHES: dict[str, Callable[[Context, Query], Found]] = {
    "Organization": directory.search_organizations,
    "Location": directory.search_locations,
    "HealthcareService": directory.search_healthcare_services,
    "Practitioner": directory.search_practitioners,
    "PractitionerRole": directory.search_practitioner_roles,
    "Schedule": slots.search_schedules,
    "Slot": slots.search_slots,
    "Appointment": slots.search_appointments,
}
#: _include values: the element whose references are added to the Bundle.
INCLUDES = {"Slot:schedule": "schedule", "Appointment:slot": "slot",
            "Appointment:patient": "participant:Patient", "Appointment:actor": "participant",
            "Schedule:actor": "actor", "PractitionerRole:practitioner": "practitioner",
            "PractitionerRole:organization": "organization",
            "HealthcareService:organization": "providedBy",
            "Location:organization": "managingOrganization"}


def get_context(request: Request, db: DbSession, now: Now,
                principal: OptionalPrincipal) -> Context:
    site = str(request.base_url).rstrip("/")
    return Context(db=db, principal=principal, now=now, site=site, base=f"{site}/fhir")


Ctx = Annotated[Context, Depends(get_context)]


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


async def json_body(request: Request) -> Any:
    raw = await request.body()  # bounded, no NUL (intake)
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidInput("请求体不是有效的 JSON") from exc


JsonBody = Annotated[Any, Depends(json_body)]


async def form_params(request: Request) -> dict[str, list[str]]:
    """POST _search: the URL's parameters and the form body's, together."""
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = list(request.query_params.multi_items())
    pairs += [(k, v) for k, values in parse_qs(body).items() for v in values]
    return _multi(pairs)


# --- metadata and bulk publication (before the generic routes) -----------------------------


@router.get("/metadata")
def metadata(request: Request, now: Now) -> FhirResponse:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return FhirResponse(capability_statement(base, now),
                        headers={"Cache-Control": "public, max-age=3600"})


def _since(raw: str | None) -> Any:
    return parse_instant(raw, "_since")[0] if raw else None


def _cached(seconds: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={seconds}"}


@router.get("/$bulk-publish")
def bulk_manifest(request: Request, ctx: Ctx, region: str | None = None,
                  since: Annotated[str | None, QueryParam(alias="_since")] = None
                  ) -> JSONResponse:
    """SMART Scheduling Links manifest: the Location, Schedule and Slot files of a region."""
    body = bulk.manifest(ctx, region=region, since=_since(since), request_url=str(request.url))
    return JSONResponse(body, headers=_cached(bulk.CACHE_SECONDS))


@router.get("/$bulk-publish/{kind}.ndjson")
def bulk_file(kind: str, ctx: Ctx, region: str | None = None, organization: str | None = None,
              week: str | None = None,
              since: Annotated[str | None, QueryParam(alias="_since")] = None) -> Response:
    if kind == "Location":
        resources = bulk.locations(ctx, region)
    elif kind == "Schedule":
        resources = bulk.schedules(ctx, region, _since(since))
    elif kind == "Slot" and organization is not None:
        hospital_id = reference_int(organization, "Organization", "organization")
        resources = bulk.slots(ctx, hospital_id, week, _since(since))
    else:
        raise UnsupportedType(detail={"file": kind})
    return Response(bulk.ndjson(resources), media_type=bulk.NDJSON,
                    headers=_cached(bulk.CACHE_SECONDS))


# --- IHE ITI Scheduling operations --------------------------------------------------------


@router.get("/Appointment/$find")
def find_get(request: Request, ctx: Ctx) -> FhirResponse:
    """ITI-115 Find Potential Appointments (start and end required)."""
    req = FindRequest.of(dict(_multi(list(request.query_params.multi_items()))))
    return FhirResponse(bundle(operations.find(ctx, req), base=ctx.base))


@router.post("/Appointment/$find")
def find_post(body: JsonBody, ctx: Ctx) -> FhirResponse:
    req = FindRequest.of(operations.parameters(body))
    return FhirResponse(bundle(operations.find(ctx, req), base=ctx.base))


async def operation_target(body: JsonBody, request: Request, now: Now, units: Units) -> Target:
    """The $hold/$book target; a new claim first passes the booking gate (BK-8)."""
    target = operations.target_of(body)
    if target.slot_id is not None:
        await admit_booking(request, now, units, schedule_id=None, slot_id=target.slot_id,
                            channel=Channel.app)
    return target


OperationTarget = Annotated[Target, Depends(operation_target)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _operate(target: Target, ctx: Ctx, principal: CurrentPrincipal, key: str | None,
             name: str) -> JSONResponse:
    def work() -> dict[str, Any]:
        appt = operations.hold_or_book(ctx, target, hold=name == "$hold")
        return bundle([slots.appointment_resource(ctx, appt)], base=ctx.base)

    response = idempotent(ctx.db, principal, key, f"/fhir/Appointment/{name}",
                          dataclasses.asdict(target), ctx.now, 200, work)
    response.headers["content-type"] = FHIR_JSON
    return response


@router.post("/Appointment/$hold")
def hold(target: OperationTarget, ctx: Ctx, principal: CurrentPrincipal,
         idempotency_key: IdemKey = None) -> JSONResponse:
    """ITI-116 Hold Appointment: the slot is held for a few minutes (status pending)."""
    return _operate(target, ctx, principal, idempotency_key, "$hold")


@router.post("/Appointment/$book")
def book(target: OperationTarget, ctx: Ctx, principal: CurrentPrincipal,
         idempotency_key: IdemKey = None) -> JSONResponse:
    """ITI-117 Book Appointment: book a proposal, confirm a hold, or cancel (status
    cancelled)."""
    return _operate(target, ctx, principal, idempotency_key, "$book")


# --- read and search ------------------------------------------------------------------------


def _references(resource: dict[str, Any], element: str) -> list[str]:
    name, _, only = element.partition(":")
    value = resource.get(name)
    items = value if isinstance(value, list) else [value] if value else []
    if name == "participant":
        items = [p.get("actor") for p in items]
    refs = [str(i["reference"]) for i in items if isinstance(i, dict) and "reference" in i]
    return [r for r in refs if not only or r.startswith(f"{only}/")]


def _included(ctx: Context, resource_type: str, query: Query,
              matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for value in query.all("_include"):
        element = INCLUDES.get(value) if value.startswith(f"{resource_type}:") else None
        if element is None:
            continue
        for resource in matches:
            for reference in _references(resource, element):
                kind, _, ident = reference.partition("/")
                if reference in seen or kind not in READERS:
                    continue
                seen.add(reference)
                try:
                    out.append(READERS[kind](ctx, ident))
                except OnetripError:
                    continue  # not readable by this caller: left out, as FHIR allows
    return out


def _search(ctx: Context, resource_type: str, params: dict[str, list[str]],
            in_url: bool) -> FhirResponse:
    query = Query(params, ctx.base)
    if resource_type == "Patient":
        matches, total = patients.search_patients(ctx, query, in_url=in_url)
    elif resource_type in SEARCHES:
        matches, total = SEARCHES[resource_type](ctx, query)
    else:
        raise UnsupportedType(detail={"resourceType": resource_type})
    included = _included(ctx, resource_type, query, matches)
    return FhirResponse(searchset(resource_type, query, matches, total, included))


@router.get("/{resource_type}")
def search(resource_type: str, request: Request, ctx: Ctx) -> FhirResponse:
    return _search(ctx, resource_type, _multi(list(request.query_params.multi_items())),
                   in_url=True)


@router.post("/{resource_type}/_search")
def search_post(resource_type: str, ctx: Ctx,
                params: Annotated[dict[str, list[str]], Depends(form_params)]) -> FhirResponse:
    """Search with the parameters in a form body (required for identity numbers)."""
    return _search(ctx, resource_type, params, in_url=False)


@router.get("/{resource_type}/{ident}")
def read(resource_type: str, ident: str, ctx: Ctx) -> FhirResponse:
    if resource_type not in READERS:
        raise UnsupportedType(detail={"resourceType": resource_type})
    if not _ID.match(ident):
        raise UnknownResource(detail={"id": ident[:64]})
    return FhirResponse(READERS[resource_type](ctx, ident))
