"""IHE ITI Scheduling: $find (ITI-115), $hold (ITI-116) and $book (ITI-117).

$find proposes appointments on slots the caller could book now (none of a day whose booking
its hospital pauses overnight: the engine would refuse them). $hold and $book name a
proposal (``Appointment/proposed-<slot>[-<patient>]``), a held appointment, or carry an
Appointment resource; every claim goes through scheduling.booking (pools, limits, no-show
restrictions, audit) with the channel of the caller's role. $book with an Appointment whose
status is ``cancelled`` cancels it under the same rules as the REST API (BK-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from onetrip.errors import InvalidInput
from onetrip.fhir.context import Context
from onetrip.fhir.outcome import InvalidSearch, TooCostly, Unsupported
from onetrip.fhir.params import (
    DEFAULT_COUNT,
    parse_instant,
    reference_id,
    reference_int,
)
from onetrip.fhir.resources import proposed
from onetrip.fhir.slots import (
    bookable,
    booking_channel,
    department_of,
    doctor_of,
    location_filter,
)
from onetrip.identity import service as identity_service
from onetrip.identity.rules import ACCOUNT_ROLES
from onetrip.numbers import parse_digits, parse_id
from onetrip.org.models import Department
from onetrip.scheduling import booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.errors import SlotNotFound
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import BOOKABLE_SCHEDULE_STATUSES

MAX_FIND_DAYS = 31
MAX_FIND_COUNT = 100


# --- input: Parameters ------------------------------------------------------------------


def _objects(value: Any, field: str) -> list[dict[str, Any]]:
    """A list of JSON objects (none if absent); raises InvalidInput for any other shape."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput(f"{field} 应为对象列表", detail=[{"field": field}])
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    """A JSON object (empty if absent); raises InvalidInput for any other shape."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} 应为对象", detail=[{"field": field}])
    return value


def parameters(body: Any) -> dict[str, list[Any]]:
    """A Parameters resource as ``{name: [value or resource, ...]}``."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidInput("请求体应为 FHIR Parameters 资源", detail=[{"field": "resourceType"}])
    out: dict[str, list[Any]] = {}
    for p in _objects(body.get("parameter"), "parameter"):
        if not isinstance(p.get("name"), str):
            raise InvalidInput("Parameters.parameter 格式有误", detail=[{"field": "parameter"}])
        value = p.get("resource")
        if value is None:
            value = next((v for k, v in p.items() if k.startswith("value")), None)
        out.setdefault(p["name"], []).append(value)
    return out


def _text(value: Any, name: str) -> str:
    if isinstance(value, dict):  # valueReference, valueCoding, valueCodeableConcept
        if "reference" in value:
            return str(value["reference"])
        codings = _objects(value.get("coding", [value]), f"{name}.coding")
        if not codings:
            raise InvalidInput(f"参数{name}缺少编码", detail=[{"field": f"{name}.coding"}])
        return str(codings[0].get("code", ""))
    return str(value)


def _count(values: list[str]) -> int:
    """$find's _count: the last one given, at most MAX_FIND_COUNT."""
    count = parse_digits(values[-1]) if values else DEFAULT_COUNT
    if count is None:
        raise InvalidSearch("参数_count应为非负整数", detail=[{"field": "_count"}])
    return min(count, MAX_FIND_COUNT)


# --- $find ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindRequest:
    start: datetime
    end: datetime
    specialties: list[str]
    practitioners: list[int]
    locations: list[str]
    organizations: list[int]
    patient_id: int | None
    count: int

    @classmethod
    def of(cls, values: dict[str, list[Any]]) -> FindRequest:
        def texts(name: str) -> list[str]:
            return [t for v in values.get(name, []) for t in _text(v, name).split(",") if t]

        for name in ("start", "end"):
            if not texts(name):
                raise InvalidSearch(f"缺少必填参数{name}", detail=[{"field": name}])
        start = parse_instant(texts("start")[-1], "start")[0]
        last = texts("end")[-1]
        end = parse_instant(last, "end")[0 if "T" in last else 1]  # a date: to its end
        if end <= start:
            raise InvalidSearch("end 应晚于 start", detail=[{"field": "end"}])
        if end - start > timedelta(days=MAX_FIND_DAYS):
            raise TooCostly(f"查询时间范围不能超过{MAX_FIND_DAYS}天", detail=[{"field": "end"}])
        patients = [reference_int(v, "Patient", "patient") for v in texts("patient")]
        return cls(start=start, end=end,
                   specialties=[t.rpartition("|")[2] for t in texts("specialty")],
                   practitioners=[reference_int(v, "Practitioner", "practitioner")
                                  for v in texts("practitioner")],
                   locations=[reference_id(v, "Location", "location")
                              for v in texts("location")],
                   organizations=[reference_int(v, "Organization", "organization")
                                  for v in texts("organization")],
                   patient_id=patients[-1] if patients else None,
                   count=_count(texts("_count")))


def find(ctx: Context, req: FindRequest) -> list[dict[str, Any]]:
    """ITI-115: proposed appointments on the slots the caller could book now, earliest
    first; naming a patient checks (and audits) access to that patient."""
    if req.patient_id is not None:
        identity_service.access_patient(ctx.db, ctx.signed_in(), req.patient_id,
                                        action="appointment.find")
    stmt = (select(Slot, Schedule).join(Schedule, Slot.schedule_id == Schedule.id)
            .where(Schedule.status.in_(BOOKABLE_SCHEDULE_STATUSES),
                   scheduling_service.claimable(ctx.now),
                   Slot.start_at > ctx.now, Slot.start_at >= req.start, Slot.start_at < req.end,
                   bookable(ctx, set(req.organizations) or None))
            .order_by(Slot.start_at, Slot.id).limit(req.count))
    if req.specialties:
        stmt = stmt.where(Schedule.department_id.in_(
            select(Department.id).where(Department.code.in_(req.specialties))))
    if req.practitioners:
        stmt = stmt.where(or_(Schedule.substitute_practitioner_id.in_(req.practitioners),
                              Schedule.practitioner_id.in_(req.practitioners)
                              & Schedule.substitute_practitioner_id.is_(None)))
    if req.locations:
        stmt = stmt.where(or_(*(location_filter(loc) for loc in req.locations)))
    if req.organizations:
        stmt = stmt.where(Schedule.hospital_id.in_(req.organizations))
    return [proposed(row, s, department_of(ctx, s.department_id), doctor_of(ctx, s),
                     req.patient_id) for row, s in ctx.db.execute(stmt).all()]


# --- $hold and $book --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a $hold or $book names: a slot (a proposal) for a patient, an appointment
    that exists (a hold to confirm), or one to cancel."""

    slot_id: int | None = None
    patient_id: int | None = None
    appointment_id: int | None = None
    cancel: bool = False
    reason: str = ""


def _proposal(ident: str) -> Target | None:
    ids = [parse_id(p) for p in ident.removeprefix("proposed-").split("-")]
    if not ident.startswith("proposed-") or None in ids or len(ids) > 2:
        return None
    return Target(slot_id=ids[0], patient_id=ids[1] if len(ids) == 2 else None)


def _from_reference(raw: str, patient_id: int | None) -> Target:
    ident = reference_id(raw, "Appointment", "appointment-reference")
    proposal = _proposal(ident)
    if proposal is not None:
        return Target(slot_id=proposal.slot_id, patient_id=proposal.patient_id or patient_id)
    appointment_id = parse_id(ident)
    if appointment_id is None:
        raise InvalidSearch("appointment-reference 应引用 $find 返回的预约",
                            detail=[{"field": "appointment-reference"}])
    return Target(appointment_id=appointment_id)


def _cancellation(appt: dict[str, Any]) -> Target:
    appointment_id = parse_id(str(appt.get("id") or ""))
    if appointment_id is None:
        raise InvalidInput("取消预约须给出预约编号", detail=[{"field": "Appointment.id"}])
    reason = _object(appt.get("cancelationReason"), "cancelationReason").get("text")
    return Target(appointment_id=appointment_id, cancel=True, reason=str(reason or "FHIR取消"))


def _from_resource(appt: Any, patient_id: int | None) -> Target:
    if not isinstance(appt, dict) or appt.get("resourceType") != "Appointment":
        raise InvalidInput("appointment-resource 应为 Appointment 资源",
                           detail=[{"field": "appointment-resource"}])
    if appt.get("status") == "cancelled":
        return _cancellation(appt)
    for p in _objects(appt.get("participant"), "participant"):
        actor = str(_object(p.get("actor"), "participant.actor").get("reference", ""))
        if actor.rpartition("/")[0].endswith("Patient"):
            patient_id = reference_int(actor, "Patient", "participant")
    if ident := str(appt.get("id") or ""):
        found = _from_reference(f"Appointment/{ident}", patient_id)
        if found.slot_id is not None or found.appointment_id is not None:
            return found
    slots = _objects(appt.get("slot"), "slot")
    if not slots:
        raise InvalidInput("Appointment 须引用一个号源（slot）", detail=[{"field": "slot"}])
    return Target(slot_id=reference_int(str(slots[0].get("reference", "")), "Slot", "slot"),
                  patient_id=patient_id)


def target_of(body: Any) -> Target:
    """Read the target of a $hold/$book body (a Parameters resource)."""
    values = parameters(body)
    patients = [reference_int(_text(v, "patient"), "Patient", "patient")
                for v in values.get("patient", [])]
    patient_id = patients[-1] if patients else None
    if values.get("appointment-reference"):
        return _from_reference(_text(values["appointment-reference"][-1],
                                     "appointment-reference"), patient_id)
    if values.get("appointment-resource"):
        return _from_resource(values["appointment-resource"][-1], patient_id)
    raise InvalidSearch("缺少参数 appointment-reference 或 appointment-resource",
                        detail=[{"field": "appointment-reference"}])


def _patient_for(ctx: Context, target: Target) -> int:
    if target.patient_id is not None:
        return target.patient_id
    principal = ctx.signed_in()
    if principal.role in ACCOUNT_ROLES and len(principal.patient_ids) == 1:
        return next(iter(principal.patient_ids))
    raise InvalidInput("请指定就诊人（patient 参数或 participant）", detail=[{"field": "patient"}])


def hold_or_book(ctx: Context, target: Target, *, hold: bool) -> Appointment:
    """Claim, confirm or cancel through scheduling.booking; raises its errors unchanged."""
    principal = ctx.signed_in()
    if target.cancel:
        if hold:
            raise Unsupported("$hold 不能取消预约，请使用 $book")
        assert target.appointment_id is not None
        return booking.cancel(ctx.db, principal=principal, appointment_id=target.appointment_id,
                              now=ctx.now, reason=target.reason)
    if target.appointment_id is not None:
        if hold:
            raise Unsupported("该预约已存在，不能再次锁号",
                              detail={"appointment_id": target.appointment_id})
        return booking.confirm(ctx.db, principal=principal,
                               appointment_id=target.appointment_id, now=ctx.now)
    assert target.slot_id is not None
    slot = ctx.db.get(Slot, target.slot_id)
    if slot is None:
        raise SlotNotFound(detail={"slot_id": target.slot_id})
    channel = booking_channel(principal, slot.schedule.hospital_id)
    return booking.book(ctx.db, principal=principal, patient_id=_patient_for(ctx, target),
                        channel=channel, now=ctx.now, slot_id=slot.id, hold=hold)
