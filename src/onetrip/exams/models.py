"""Exam tables. The invariant that matters lives in the database: a slot's ``booked`` count
only grows by a conditional UPDATE ``WHERE booked < capacity`` (never an overbooking), and an
order has at most one active booking (partial unique index)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onetrip.db import Base, UTCDateTime, utcnow

_ACTIVE = "status IN ('booked', 'arrived')"


class CatalogueExam(Base):
    """One exam of a hospital's catalogue; ``spec`` holds its preparation fields."""

    __tablename__ = "exam_type"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    modality: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class CatalogueRule(Base):
    """An order rule (``first`` before ``second``) or a pair that may not share a day."""

    __tablename__ = "exam_rule"
    __table_args__ = (
        CheckConstraint("kind IN ('order', 'not_same_day')", name="kind"),
        UniqueConstraint("hospital_id", "kind", "first", "second"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    first: Mapped[str] = mapped_column(String(40))
    second: Mapped[str] = mapped_column(String(40))
    gap_minutes: Mapped[int] = mapped_column(Integer, default=0)
    reverse_minutes: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))


class ExamWalk(Base):
    """Walking minutes between two buildings of a hospital (either direction)."""

    __tablename__ = "exam_walk"
    __table_args__ = (UniqueConstraint("hospital_id", "from_building", "to_building"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    from_building: Mapped[str] = mapped_column(String(50))
    to_building: Mapped[str] = mapped_column(String(50))
    minutes: Mapped[int] = mapped_column(Integer)


class ExamResource(Base):
    """An exam room or device with its own calendar (EX-3)."""

    __tablename__ = "exam_resource"
    __table_args__ = (
        UniqueConstraint("hospital_id", "code"),
        CheckConstraint("slot_minutes > 0 AND capacity > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    building: Mapped[str] = mapped_column(String(50))
    room: Mapped[str] = mapped_column(String(100), default="")
    exam_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    #: Opening hours as [["08:00", "12:00"], ["13:30", "17:00"]] (local time).
    hours: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExamSlot(Base):
    """One slot of a resource's calendar: ``capacity`` patients starting at ``start_at``."""

    __tablename__ = "exam_slot"
    __table_args__ = (
        UniqueConstraint("resource_id", "start_at"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked"),
        CheckConstraint("status IN ('open', 'blocked')", name="status"),
        Index("ix_exam_slot_hospital_start", "hospital_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exam_resource.id"))
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    day: Mapped[date] = mapped_column(Date)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")

    resource: Mapped[ExamResource] = relationship()


class ExamOrder(Base):
    """A doctor's order of one exam for a patient, with what its preparation rules need."""

    __tablename__ = "exam_order"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'booked', 'done', 'cancelled')", name="status"),
        Index("ix_exam_order_hospital_status", "hospital_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    exam_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    ordered_by: Mapped[str] = mapped_column(String(100), default="")
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    renal_disease: Mapped[bool] = mapped_column(Boolean, default=False)
    diabetes: Mapped[bool] = mapped_column(Boolean, default=False)
    creatinine_on: Mapped[date | None] = mapped_column(Date)
    #: The results are needed at this outpatient follow-up window (same building: clinic).
    needed_for_followup: Mapped[bool] = mapped_column(Boolean, default=False)
    followup_opens: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followup_closes: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followup_building: Mapped[str] = mapped_column(String(50), default="")
    #: The outpatient session the follow-up is booked in (a department, a doctor if set);
    #: without one the follow-up is a return visit under the day's registration (回诊).
    followup_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    followup_practitioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("practitioner.id"))
    #: The patient has eaten nothing since (asked and recorded by staff at
    #: ``fasting_noted_at``): for a short while after, a fasting exam may be that morning
    #: though the patient is told of it only now.
    fasting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fasting_noted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExamBooking(Base):
    """A booked exam: one place in one slot for one order."""

    __tablename__ = "exam_booking"
    __table_args__ = (
        CheckConstraint("status IN ('booked', 'arrived', 'done', 'cancelled', 'noshow')",
                        name="status"),
        Index("uq_exam_booking_active_order", "order_id", unique=True,
              sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("ix_exam_booking_patient_start", "patient_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("exam_order.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("exam_slot.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("exam_resource.id"))
    exam_code: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    channel: Mapped[str] = mapped_column(String(16))
    booked_by: Mapped[str] = mapped_column(String(100), default="")
    followup_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    noshow_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    penalty_event: Mapped[str | None] = mapped_column(String(24))
    #: The outpatient appointment booked with the plan for its follow-up, if any.
    followup_appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))

    order: Mapped[ExamOrder] = relationship()
    slot: Mapped[ExamSlot] = relationship()
    resource: Mapped[ExamResource] = relationship()
