"""Pydantic shapes of the exam API: one per direction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from onetrip.exams import rules as R
from onetrip.exams.models import ExamBooking, ExamOrder


class OrderCreate(BaseModel):
    patient_id: int = Field(gt=0)
    exam_code: str = Field(min_length=1, max_length=40)
    renal_disease: bool = False
    diabetes: bool = False
    creatinine_on: date | None = None
    needed_for_followup: bool = False
    followup_opens: datetime | None = None
    followup_closes: datetime | None = None
    followup_building: str = Field(default="", max_length=50)
    #: The outpatient session to book the follow-up in; none: a return visit (回诊).
    followup_department_id: int | None = Field(default=None, gt=0)
    followup_practitioner_id: int | None = Field(default=None, gt=0)
    note: str = Field(default="", max_length=500)


class OrderRead(BaseModel):
    id: int
    patient_id: int
    exam_code: str
    status: str
    ordered_at: datetime

    @classmethod
    def of(cls, o: ExamOrder) -> OrderRead:
        return cls(id=o.id, patient_id=o.patient_id, exam_code=o.exam_code, status=o.status,
                   ordered_at=o.ordered_at)


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
    followup_at: datetime | None = None


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
