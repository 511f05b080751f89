"""Pydantic shapes of the exam API: one per direction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from onetrip.exams import rules as R
from onetrip.exams.catalogue import MAX_SLOT_MINUTES
from onetrip.exams.models import ExamBooking, ExamOrder, ExamResource, ExamSlot


class OrderCreate(BaseModel):
    patient_id: int = Field(gt=0)
    exam_code: str = Field(min_length=1, max_length=40)
    renal_disease: bool = False
    diabetes: bool = False
    creatinine_on: date | None = None
    needed_for_followup: bool = False
    followup_opens: AwareDatetime | None = None
    followup_closes: AwareDatetime | None = None
    followup_building: str = Field(default="", max_length=50)
    #: The outpatient session to book the follow-up in; none: a return visit (回诊).
    followup_department_id: int | None = Field(default=None, gt=0)
    followup_practitioner_id: int | None = Field(default=None, gt=0)
    note: str = Field(default="", max_length=500)


class ResourceCreate(BaseModel):
    """A room or device: what it does, where, its slot length, places per slot and hours."""

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    building: str = Field(min_length=1, max_length=50)
    room: str = Field(default="", max_length=100)
    exam_codes: list[str] = Field(min_length=1, max_length=40)
    slot_minutes: int = Field(gt=0, le=MAX_SLOT_MINUTES)
    capacity: int = Field(default=1, gt=0, le=100)
    #: Opening hours, local time: [["08:00", "12:00"], ["13:30", "17:00"]].
    hours: list[tuple[str, str]] = Field(min_length=1, max_length=6)


class ResourceRead(BaseModel):
    id: int
    code: str
    name: str
    building: str
    room: str
    exam_codes: list[str]
    slot_minutes: int
    capacity: int
    hours: list[list[str]]
    active: bool

    @classmethod
    def of(cls, r: ExamResource) -> ResourceRead:
        return cls(id=r.id, code=r.code, name=r.name, building=r.building, room=r.room,
                   exam_codes=list(r.exam_codes), slot_minutes=r.slot_minutes,
                   capacity=r.capacity, hours=[list(h) for h in r.hours], active=r.active)


class CalendarOpen(BaseModel):
    """Open the resource's calendar on the clinic days from ``start`` to ``end``."""

    start: date
    end: date


class SlotsCreate(BaseModel):
    """Single slots beside the opening hours (an evening list, say); times with their zone."""

    starts: list[AwareDatetime] = Field(min_length=1, max_length=200)
    minutes: int | None = Field(default=None, gt=0, le=MAX_SLOT_MINUTES)
    capacity: int | None = Field(default=None, gt=0, le=100)


class SlotRead(BaseModel):
    id: int
    resource_id: int
    start_at: datetime
    end_at: datetime
    capacity: int
    booked: int

    @classmethod
    def of(cls, s: ExamSlot) -> SlotRead:
        return cls(id=s.id, resource_id=s.resource_id, start_at=s.start_at, end_at=s.end_at,
                   capacity=s.capacity, booked=s.booked)


class WalkSet(BaseModel):
    a: str = Field(min_length=1, max_length=50)
    b: str = Field(min_length=1, max_length=50)
    minutes: int = Field(ge=0, le=120)


class OrderRead(BaseModel):
    id: int
    patient_id: int
    exam_code: str
    status: str
    ordered_at: datetime
    #: The patient has eaten nothing since (recorded by staff), or null.
    fasting_since: datetime | None = None

    @classmethod
    def of(cls, o: ExamOrder) -> OrderRead:
        return cls(id=o.id, patient_id=o.patient_id, exam_code=o.exam_code, status=o.status,
                   ordered_at=o.ordered_at, fasting_since=o.fasting_since)


class FastingSet(BaseModel):
    """Since when the patient has eaten nothing (within the last 24 hours), with its
    time zone."""

    since: AwareDatetime


class PlanRequest(BaseModel):
    patient_id: int = Field(gt=0)
    order_ids: list[int] | None = None


class Pick(BaseModel):
    order_id: int = Field(gt=0)
    slot_id: int = Field(gt=0)


class VisitRead(BaseModel):
    order_id: int
    exam_code: str
    slot_id: int
    resource_id: int
    building: str
    start: datetime
    end: datetime


class ItineraryRead(BaseModel):
    patient_id: int
    trips: int
    hospital_minutes: int
    visits: list[VisitRead]
    followup_at: datetime | None
    unplanned: list[int]

    @classmethod
    def of(cls, it: R.Itinerary, tz: Any) -> ItineraryRead:
        return cls(patient_id=it.patient_id, trips=it.trips(tz),
                   hospital_minutes=it.hospital_minutes(tz),
                   visits=[VisitRead(order_id=v.order_id, exam_code=v.exam_code,
                                     slot_id=v.slot_id, resource_id=v.resource_id,
                                     building=v.building, start=v.start, end=v.end)
                           for v in it.visits],
                   followup_at=it.followup_at, unplanned=it.unplanned)


class PlanBook(BaseModel):
    """The visits to book: the proposal as it stands, or as the centre adjusted it."""

    patient_id: int = Field(gt=0)
    visits: list[Pick] = Field(min_length=1, max_length=20)
    followup_at: AwareDatetime | None = None


class BookingRead(BaseModel):
    id: int
    order_id: int
    patient_id: int
    exam_code: str
    slot_id: int
    start_at: datetime
    status: str
    channel: str
    followup_at: datetime | None
    #: The outpatient appointment booked for the plan's follow-up, if any.
    followup_appointment_id: int | None

    @classmethod
    def of(cls, b: ExamBooking) -> BookingRead:
        return cls(id=b.id, order_id=b.order_id, patient_id=b.patient_id,
                   exam_code=b.exam_code, slot_id=b.slot_id, start_at=b.start_at,
                   status=b.status, channel=b.channel, followup_at=b.followup_at,
                   followup_appointment_id=b.followup_appointment_id)
