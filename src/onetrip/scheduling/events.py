"""Events the scheduling domain publishes (delivered with the commit, see onetrip.events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from onetrip.events import Event


@dataclass(frozen=True)
class AppointmentEvent(Event):
    appointment_id: int
    patient_id: int


@dataclass(frozen=True)
class AppointmentHeld(AppointmentEvent):
    pass


@dataclass(frozen=True)
class AppointmentBooked(AppointmentEvent):
    """Booked (or a hold confirmed), with what the messages about it need: a batch of
    bookings is announced without reading its appointments back."""

    schedule_id: int
    hospital_id: int
    day: date
    start_at: datetime
    booked_at: datetime | None

    @classmethod
    def of(cls, appt: Any) -> AppointmentBooked:
        """The event of an appointment (or of anything with its columns)."""
        return cls(appointment_id=appt.id, patient_id=appt.patient_id,
                   schedule_id=appt.schedule_id, hospital_id=appt.hospital_id, day=appt.day,
                   start_at=appt.start_at, booked_at=appt.booked_at)


@dataclass(frozen=True)
class AppointmentCancelled(AppointmentEvent):
    reason: str = ""


@dataclass(frozen=True)
class AppointmentRebooked(AppointmentEvent):
    """``appointment_id`` is the new appointment; ``previous_id`` the one it replaces."""

    previous_id: int = 0


@dataclass(frozen=True)
class AppointmentCheckedIn(AppointmentEvent):
    pass


@dataclass(frozen=True)
class PatientCalled(AppointmentEvent):
    pass


@dataclass(frozen=True)
class NoShowRecorded(AppointmentEvent):
    #: When it was marked (the no-show itself counts at the visit's time): the message
    #: about it is sent from then, within the quiet hours' rules.
    marked_at: datetime | None = None


@dataclass(frozen=True)
class ScheduleStopped(Event):
    schedule_id: int
    affected_appointment_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScheduleSubstituted(Event):
    schedule_id: int
    substitute_practitioner_id: int
    affected_appointment_ids: tuple[int, ...] = ()
    substituted_at: datetime | None = None


@dataclass(frozen=True)
class RebookingOffered(AppointmentEvent):
    offer_id: int = 0
    #: When it was made, or renewed (a later stop of the session it held a slot in).
    offered_at: datetime | None = None


@dataclass(frozen=True)
class WaitlistOffered(Event):
    entry_id: int
    patient_id: int
    slot_id: int
    offered_at: datetime | None = None


@dataclass(frozen=True)
class WaitlistClosed(Event):
    """A stopped session ends its waitlist: each waiting patient is told (BK-6)."""

    entry_id: int
    patient_id: int
    schedule_id: int
    closed_at: datetime | None = None
