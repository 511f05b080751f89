"""Scheduling API shapes (one per direction)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

from onetrip.config import get_settings
from onetrip.db import MAX_ID
from onetrip.identity.rules import DocumentType
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import Channel, SessionOfDay

if TYPE_CHECKING:
    from onetrip.scheduling.engine import Booked


def _local(value: datetime | None) -> datetime | None:
    return value.astimezone(get_settings().tz) if value is not None else None


class ScheduleRead(BaseModel):
    id: int
    hospital: str
    department: str
    department_name: str
    practitioner: str | None
    practitioner_name: str | None
    date: date
    session: SessionOfDay
    start: datetime
    end: datetime
    service_level: str
    fee: Decimal
    status: str
    #: Free slots per pool bookable now: none while booking is paused overnight.
    available: dict[str, int]
    #: Set between the next-day cutoff and the same-day opening: when booking reopens.
    booking_reopens_at: datetime | None = None

    @classmethod
    def of(cls, s: Schedule, *, hospital: str, department: tuple[str, str],
           practitioner: tuple[str, str] | None, available: dict[str, int],
           reopens_at: datetime | None = None) -> ScheduleRead:
        return cls(id=s.id, hospital=hospital, department=department[0],
                   department_name=department[1],
                   practitioner=practitioner[0] if practitioner else None,
                   practitioner_name=practitioner[1] if practitioner else None,
                   date=s.day, session=SessionOfDay(s.session), start=_local(s.start_at),
                   end=_local(s.end_at), service_level=s.service_level, fee=s.fee,
                   status=s.status, available={} if reopens_at else available,
                   booking_reopens_at=_local(reopens_at) if reopens_at else None)


class SlotRead(BaseModel):
    id: int
    schedule_id: int
    start: datetime
    pool: str

    @classmethod
    def of(cls, s: Slot, pool: str) -> SlotRead:
        return cls(id=s.id, schedule_id=s.schedule_id, start=_local(s.start_at), pool=pool)


class BookingCreate(BaseModel):
    """Book a given slot, or the earliest free slot of a schedule open to the channel."""

    schedule_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    slot_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    patient_id: int = Field(gt=0, le=MAX_ID)
    channel: Channel

    @model_validator(mode="after")
    def _one_target(self) -> BookingCreate:
        if (self.schedule_id is None) == (self.slot_id is None):
            raise ValueError("请指定 schedule_id 或 slot_id 之一")
        return self


class AppointmentRead(BaseModel):
    id: int
    status: str
    patient_id: int
    slot_id: int
    schedule_id: int
    start: datetime
    date: date
    pool: str
    channel: str
    hold_expires_at: datetime | None = None
    cancelled_at: datetime | None = None
    checked_in_at: datetime | None = None
    rebooked_from_id: int | None = None

    @classmethod
    def of(cls, a: Appointment | Booked) -> AppointmentRead:
        return cls(id=a.id, status=a.status, patient_id=a.patient_id, slot_id=a.slot_id,
                   schedule_id=a.schedule_id, start=_local(a.start_at), date=a.day,
                   pool=a.pool, channel=a.channel, hold_expires_at=_local(a.hold_expires_at),
                   cancelled_at=_local(a.cancelled_at), checked_in_at=_local(a.checked_in_at),
                   rebooked_from_id=a.rebooked_from_id)


class CancelRequest(BaseModel):
    reason: str = Field(default="", max_length=200)


class CheckInRequest(BaseModel):
    """On site (kiosk, window) the patient's document proves who is checking in (BK-8)."""

    document_type: DocumentType = DocumentType.resident_id_card
    document_number: str | None = Field(default=None, max_length=64)  # e-health card: 64


class PassOverRequest(BaseModel):
    """过号: the patient called in who did not come; when given, must be the one called."""

    appointment_id: int | None = Field(default=None, gt=0, le=MAX_ID)


class QueueRead(BaseModel):
    appointment_id: int
    ahead: int
    estimated_wait_minutes: int
    late: bool


class WaitlistCreate(BaseModel):
    schedule_id: int = Field(gt=0, le=MAX_ID)
    patient_id: int = Field(gt=0, le=MAX_ID)
    channel: Channel


class WaitlistRead(BaseModel):
    id: int
    schedule_id: int
    patient_id: int
    #: waiting, offered, accepted (booked), expired (an offer not taken in time),
    #: cancelled (the patient left) or closed (the session was stopped, BK-6).
    status: str
    offered_slot_id: int | None
    offer_expires_at: datetime | None
    #: Patients waiting ahead of this one (null once it no longer waits).
    position: int | None = None


class StopRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class SubstituteRequest(BaseModel):
    practitioner: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=200)


class OfferRead(BaseModel):
    id: int
    appointment_id: int
    patient_id: int
    status: str
    slot_ids: list[int]
    held_slot_id: int | None
    expires_at: datetime | None
    refund_flagged: bool
    note: str
    new_appointment_id: int | None


class OfferAccept(BaseModel):
    slot_id: int = Field(gt=0, le=MAX_ID)


class StopRead(BaseModel):
    schedule_id: int
    status: str
    offers: list[OfferRead]


class PolicyWrite(BaseModel):
    pools: dict[str, Any] = Field(default_factory=dict)
    penalty: dict[str, Any] = Field(default_factory=dict)


class PolicyRead(PolicyWrite):
    hospital: str


class TemplateWrite(BaseModel):
    department: str
    practitioner: str | None = None
    weekday: int = Field(ge=1, le=7)
    session: SessionOfDay
    start_time: time
    slot_minutes: int = Field(ge=1, le=120)
    capacity: int = Field(ge=1, le=200)
    service_level: str | None = None


class IndicatorFigures(BaseModel):
    """One department's, hospital's or region's booking indicators (``indicators``); a
    rate with nothing to divide by is null."""

    visits: int
    booked_visits: int
    appointment_rate: float | None = Field(description="国考 22: booked visits / visits")
    average_wait_minutes: float | None = Field(
        description="国考 23: minutes from check-in (or the slot, if earlier) to being called")
    noshows: int
    noshow_rate: float | None
    slots: int
    online_slots: int
    online_share: float | None = Field(description="BK-2: online and referral slots / slots")
    online_share_met: bool | None = Field(description="online_share at least 80%")
    average_lead_days: float | None = Field(description="days booked ahead (BK-9)")


class KioskCoverage(BaseModel):
    """BK-10: at least one kiosk per 50,000 outpatient visits a year."""

    kiosks: int = Field(description="kiosks in service as the period ends (kiosk tokens)")
    kiosks_needed: int = Field(description="the period's visits scaled to a year / 50,000, "
                                           "rounded up")
    kiosks_met: bool = Field(description="kiosks at least kiosks_needed (the region: every "
                                         "hospital's)")


class DepartmentIndicators(IndicatorFigures):
    code: str
    name: str


class HospitalIndicators(IndicatorFigures, KioskCoverage):
    hospital: str
    name: str
    departments: list[DepartmentIndicators]


class RegionIndicators(IndicatorFigures, KioskCoverage):
    pass


class BookingIndicatorsRead(BaseModel):
    from_: date = Field(alias="from")
    to: date
    region: RegionIndicators
    hospitals: list[HospitalIndicators]
