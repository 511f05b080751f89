"""/api/v1/exams routes. Thin: parse, call a service, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy import select

from onetrip.config import get_settings
from onetrip.deps import CurrentPrincipal, DbSession, Now, require_role
from onetrip.errors import PermissionDenied
from onetrip.exams import booking, resources, service
from onetrip.exams.catalogue import catalogue_as_data
from onetrip.exams.errors import ResourceInvalid
from onetrip.exams.models import ExamResource
from onetrip.exams.schemas import (
    BookingRead,
    CalendarOpen,
    FastingSet,
    ItineraryRead,
    OrderCreate,
    OrderRead,
    PlanBook,
    PlanRequest,
    ResourceCreate,
    ResourceRead,
    SlotRead,
    SlotsCreate,
    WalkSet,
)
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal

router = APIRouter(prefix="/api/v1/exams", tags=["exams"])
Centre = Annotated[Principal, Depends(require_role(Role.exam_centre, Role.hospital_admin))]
Planner = Annotated[Principal, Depends(require_role(Role.exam_centre, Role.hospital_admin,
                                                    Role.doctor))]


def _hospital(principal: Principal) -> int:
    if principal.hospital_id is None:
        raise PermissionDenied("请使用本院工作人员账号")
    return principal.hospital_id


@router.get("/catalogue")
def read_catalogue(db: DbSession, principal: Planner) -> dict[str, Any]:
    """The hospital's exams and rules, each with its source."""
    return service.readable_catalogue(db, _hospital(principal))


@router.put("/catalogue")
def replace_catalogue(body: Annotated[Any, Body()], db: DbSession,
                      principal: Centre) -> dict[str, Any]:
    """Replace the catalogue; one the planner could not use, or not a catalogue at all, is
    refused whole (catalogue_invalid)."""
    cat = service.install_catalogue(db, hospital_id=_hospital(principal), data=body,
                                    by=principal)
    return catalogue_as_data(cat)


@router.get("/resources", response_model=list[ResourceRead])
def list_resources(db: DbSession, principal: Planner) -> list[ResourceRead]:
    """The hospital's exam rooms and devices."""
    rows = db.scalars(select(ExamResource).where(
        ExamResource.hospital_id == _hospital(principal)).order_by(ExamResource.code))
    return [ResourceRead.of(r) for r in rows]


@router.post("/resources", status_code=201, response_model=ResourceRead)
def create_resource(body: ResourceCreate, db: DbSession, principal: Centre) -> ResourceRead:
    """EX-3: a room or device (unknown_exam, resource_invalid, calendar_overlap)."""
    return ResourceRead.of(resources.add_resource(
        db, hospital_id=_hospital(principal), by=principal, **body.model_dump()))


@router.post("/resources/{resource_id}/calendar")
def open_calendar(resource_id: int, body: CalendarOpen, db: DbSession,
                  principal: Centre) -> dict[str, int]:
    """Slots in the opening hours of every clinic day from start to end (days that have
    slots are left as they are)."""
    if not 0 <= (body.end - body.start).days < 90:
        raise ResourceInvalid("开放日期须从开始到结束，且不超过90天")
    res = resources.access_resource(db, resource_id, _hospital(principal))
    return {"added": resources.open_calendar(db, resource=res, start=body.start, end=body.end)}


@router.post("/resources/{resource_id}/slots", status_code=201, response_model=list[SlotRead])
def add_slots(resource_id: int, body: SlotsCreate, db: DbSession,
              principal: Centre) -> list[SlotRead]:
    """Single slots; any overlapping another refuses them all (calendar_overlap)."""
    res = resources.access_resource(db, resource_id, _hospital(principal))
    return [SlotRead.of(s) for s in resources.add_slots(
        db, resource=res, starts=body.starts, minutes=body.minutes, capacity=body.capacity)]


@router.put("/walks", status_code=204)
def set_walk(body: WalkSet, db: DbSession, principal: Centre) -> None:
    """Walking minutes between two buildings, either way."""
    resources.set_walk(db, hospital_id=_hospital(principal), a=body.a, b=body.b,
                     minutes=body.minutes)


@router.post("/orders", status_code=201, response_model=OrderRead)
def create_order(body: OrderCreate, db: DbSession, now: Now,
                 principal: Annotated[Principal, Depends(require_role(Role.doctor))]
                 ) -> OrderRead:
    """A doctor's exam order (unknown_exam, creatinine_required on bad input)."""
    fields = body.model_dump(exclude={"patient_id", "exam_code"})
    return OrderRead.of(service.place_order(
        db, principal=principal, hospital_id=_hospital(principal), patient_id=body.patient_id,
        exam_code=body.exam_code, now=now, **fields))


@router.get("/orders", response_model=list[OrderRead])
def list_orders(db: DbSession, principal: Planner,
                patient_id: Annotated[int | None, Query(gt=0)] = None) -> list[OrderRead]:
    if patient_id is not None:
        identity_service.access_patient(db, principal, patient_id)
    return [OrderRead.of(o) for o in service.pending_orders(
        db, hospital_id=_hospital(principal), patient_id=patient_id)]


@router.put("/patients/{patient_id}/fasting", response_model=list[OrderRead])
def record_fasting(patient_id: int, body: FastingSet, db: DbSession, principal: Planner,
                   now: Now) -> list[OrderRead]:
    """The patient has eaten nothing since ``since`` (asked by staff): their fasting exams
    can be planned for that morning (422 fasting_since_invalid for a time to come or more
    than 24 hours ago)."""
    return [OrderRead.of(o) for o in service.record_fasting(
        db, principal=principal, hospital_id=_hospital(principal), patient_id=patient_id,
        since=body.since, now=now)]


@router.post("/plans", response_model=ItineraryRead)
def propose_plan(body: PlanRequest, db: DbSession, principal: Planner,
                 now: Now) -> ItineraryRead:
    """EX-2: the one-trip itinerary for a patient's waiting orders (nothing booked)."""
    identity_service.access_patient(db, principal, body.patient_id, action="exam.plan")
    it = service.propose(db, hospital_id=_hospital(principal), patient_id=body.patient_id,
                         now=now, order_ids=body.order_ids, principal=principal)
    return ItineraryRead.of(it, get_settings().tz)


@router.post("/bookings", status_code=201, response_model=list[BookingRead],
             responses={409: {"description": "exam_slot_full, plan_breaks_rules, "
                                             "followup_unavailable"}})
def book(body: PlanBook, db: DbSession, principal: CurrentPrincipal,
         now: Now) -> list[BookingRead]:
    """Book a plan's visits (one or several) and its follow-up appointment, all or
    nothing."""
    picks = [(p.order_id, p.slot_id) for p in body.visits]
    hospital_id, it = service.itinerary_from(db, patient_id=body.patient_id, picks=picks,
                                             followup_at=body.followup_at)
    rows = booking.book_plan(db, principal=principal, hospital_id=hospital_id,
                             patient_id=body.patient_id, itinerary=it, now=now)
    return [BookingRead.of(b) for b in rows]


@router.post("/bookings/{booking_id}/cancel", response_model=BookingRead)
def cancel(booking_id: int, db: DbSession, principal: CurrentPrincipal,
           now: Now) -> BookingRead:
    return BookingRead.of(booking.cancel(db, principal=principal, booking_id=booking_id,
                                         now=now))


@router.get("/patients/{patient_id}/itinerary")
def itinerary(patient_id: int, day: date, db: DbSession,
              principal: CurrentPrincipal) -> dict[str, Any]:
    """The patient's exams of one day, in order, as the paper slip prints them."""
    identity_service.access_patient(db, principal, patient_id)
    return {"patient_id": patient_id, "day": day.isoformat(),
            "lines": service.itinerary_lines(db, patient_id=patient_id, day=day)}
