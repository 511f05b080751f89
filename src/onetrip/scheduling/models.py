"""Scheduling tables. The invariants that matter live here, in the database:

* a slot is claimed by one conditional UPDATE (``status = 'free'``), never read-then-write;
* one active appointment per slot, per patient per department per day, and per patient per
  doctor per session: partial unique indexes on the active statuses.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onetrip.db import Base, UTCDateTime, utcnow

_ACTIVE = "status IN ('held', 'booked', 'arrived')"


class BookingPolicy(Base):
    """A hospital's pool policy and penalty rule (validated JSON; defaults when absent)."""

    __tablename__ = "booking_policy"

    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    pools: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    penalty: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ScheduleTemplate(Base):
    """A weekly session (e.g. Dr Li, Tuesday morning, room 305) that generates schedules."""

    __tablename__ = "schedule_template"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("session IN ('am', 'pm', 'evening')", name="session"),
        CheckConstraint("capacity > 0 AND slot_minutes > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    weekday: Mapped[int] = mapped_column(Integer)
    session: Mapped[str] = mapped_column(String(8))
    start_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    service_level: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)


class Schedule(Base):
    """排班: one practitioner's (or a clinic's) session on one date."""

    __tablename__ = "schedule"
    __table_args__ = (
        CheckConstraint("session IN ('am', 'pm', 'evening')", name="session"),
        CheckConstraint("status IN ('open', 'stopped', 'substituted')", name="status"),
        Index("uq_schedule_practitioner_day_session", "practitioner_id", "day", "session",
              unique=True, sqlite_where=text("practitioner_id IS NOT NULL"),
              postgresql_where=text("practitioner_id IS NOT NULL")),
        Index("ix_schedule_hospital_day", "hospital_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_template.id"))
    day: Mapped[date] = mapped_column(Date)
    session: Mapped[str] = mapped_column(String(8))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    service_level: Mapped[str] = mapped_column(String(16))
    fee: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(16), default="open")
    substitute_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    status_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    slots: Mapped[list[Slot]] = relationship(back_populates="schedule", order_by="Slot.seq")


class Slot(Base):
    """号源: one patient position with a start minute (BK-3) and a pool with its timers."""

    __tablename__ = "slot"
    __table_args__ = (
        UniqueConstraint("schedule_id", "seq"),
        CheckConstraint("status IN ('free', 'held', 'booked', 'blocked')", name="status"),
        CheckConstraint(
            "pool IN ('window', 'online', 'referral', 'priority', 'clinic')", name="pool"),
        Index("ix_slot_schedule_status_start", "schedule_id", "status", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str] = mapped_column(String(16))
    release_at: Mapped[datetime] = mapped_column(UTCDateTime)
    return_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_pool: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="free")
    #: While ``status = 'held'``: until when, and for which waitlist entry or hold.
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    schedule: Mapped[Schedule] = relationship(back_populates="slots")


class Appointment(Base):
    """A real-name patient's claim on one slot, from any channel (FHIR Appointment)."""

    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow', "
            "'expired')", name="status"),
        # The invariants: never two active claims on a slot; BK-8/limits per person.
        Index("uq_appointment_active_slot", "slot_id", unique=True,
              sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("uq_appointment_active_patient_department_day", "patient_id", "department_id",
              "day", unique=True, sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("uq_appointment_active_patient_schedule", "patient_id", "schedule_id",
              unique=True, sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("ix_appointment_patient_status", "patient_id", "status"),
        Index("ix_appointment_patient_penalty", "patient_id", "penalty_event"),
        Index("ix_appointment_schedule_status", "schedule_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    day: Mapped[date] = mapped_column(Date)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    booked_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    #: The penalty-counted event this appointment ended in (BK-6), if any.
    penalty_event: Mapped[str | None] = mapped_column(String(24))
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    noshow_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the doctor passed the patient over (过号, BK-11): called, not come in.
    passed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rebooked_from_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))

    slot: Mapped[Slot] = relationship()
    schedule: Mapped[Schedule] = relationship()


class IdempotencyRecord(Base):
    """The stored answer to a booking-like POST, replayed for the same key and body."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("principal_key", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal_key: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WaitlistEntry(Base):
    """候补: a patient waiting for a slot of a schedule; offered a freed slot in turn."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        # cancelled: the patient left; closed: a stop-clinic ended it (BK-6).
        CheckConstraint("status IN ('waiting', 'offered', 'accepted', 'expired', 'cancelled', "
                        "'closed')", name="status"),
        Index("uq_waitlist_active_patient_schedule", "patient_id", "schedule_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'offered')"),
              postgresql_where=text("status IN ('waiting', 'offered')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    offered_slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"))
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RebookingOffer(Base):
    """After a stop-clinic: the equivalent slots offered to one affected patient (BK-6)."""

    __tablename__ = "rebooking_offer"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    #: Equivalent slots, nearest first; the first is held for this patient until expires_at.
    slot_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    held_slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    refund_flagged: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    new_appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OpeningTicket(Base):
    """A booking request that arrived in the fair window right after a pool opened (BK-8).

    Requests of one opening are served in the order of a random draw, not of arrival, so a
    faster client (or a scalper's bot) gains nothing by being first. An API booking's
    ticket carries the request itself (``command``): once the window has closed, the
    opening's tickets are booked together in draw order and each keeps its answer.
    """

    __tablename__ = "opening_ticket"
    __table_args__ = (Index("ix_opening_ticket_opening_draw", "opening", "draw"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opening: Mapped[str] = mapped_column(String(80))
    draw: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # none_as_null: a ticket without a request is SQL NULL, not the JSON text null.
    command: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class RateCounter(Base):
    """Booking attempts per account or client address in a fixed one-minute window (BK-8)."""

    __tablename__ = "rate_counter"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class MergeMove(Base):
    """A row this domain re-pointed when two patient records were merged (ID-3), so that
    unmerging moves back exactly those rows."""

    __tablename__ = "merge_move"
    __table_args__ = (UniqueConstraint("merge_id", "kind", "row_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("patient_merge.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    row_id: Mapped[int] = mapped_column(Integer)
