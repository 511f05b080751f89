"""What messages and slips say about a visit: time, department, doctor, place, deadline.

Read from the scheduling and org domains (never written); shared by the subscribers that
queue messages and by the paper slip (RM-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Department, Location, Practitioner
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import cancel_deadline

TITLES = {"chief_physician": "主任医师", "associate_chief_physician": "副主任医师",
          "attending_physician": "主治医师", "resident_physician": "住院医师"}


def when(moment: datetime) -> str:
    """``12月14日 08:00`` in the hospital's time zone."""
    local = moment.astimezone(get_settings().tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def place_of(db: Session, schedule: Schedule) -> list[Location]:
    """The session's place from the campus down (campus, building, floor, room as known)."""
    dept = db.get_one(Department, schedule.department_id)
    location_id = schedule.location_id or dept.location_id
    chain: list[Location] = []
    loc = db.get(Location, location_id) if location_id else None
    while loc is not None and len(chain) < 8:
        chain.append(loc)
        loc = loc.parent
    return chain[::-1]


def doctor_of(db: Session, schedule: Schedule) -> str:
    """``王明主任医师``: the substitute if one took the session, else the scheduled doctor."""
    doctor_id = schedule.substitute_practitioner_id or schedule.practitioner_id
    doctor = db.get(Practitioner, doctor_id) if doctor_id else None
    return f"{doctor.name}{TITLES.get(doctor.title, '')}" if doctor else ""


def visit_vars(db: Session, schedule: Schedule, start_at: datetime) -> dict[str, Any]:
    """What every appointment message shows: time, department, doctor and place."""
    dept = db.get_one(Department, schedule.department_id)
    chain = place_of(db, schedule)
    return {"time": when(start_at), "department": dept.name, "doctor": doctor_of(db, schedule),
            "place": chain[-1].name if chain else dept.name,
            "checkin_minutes": get_settings().notify_checkin_minutes}


def deadline_of(db: Session, appt: Appointment) -> datetime:
    """BK-6: the moment a patient can still cancel without penalty."""
    policy, _penalty = scheduling_service.policy_for(db, appt.hospital_id)
    return cancel_deadline(org_calendar.previous_working_day(appt.day), policy,
                           get_settings().tz)


def appointment_vars(db: Session, appt: Appointment) -> dict[str, Any]:
    out = visit_vars(db, db.get_one(Schedule, appt.schedule_id), appt.start_at)
    out["cancel_deadline"] = when(deadline_of(db, appt))
    return out


def appointments_vars(db: Session, appts: Sequence[Appointment]) -> list[dict[str, Any]]:
    """``appointment_vars`` of many appointments, looked up once per session: all but the
    time depend on the session alone (its department, doctor, place, hospital and day)."""
    per_schedule: dict[int, dict[str, Any]] = {}
    out = []
    for appt in appts:
        if appt.schedule_id not in per_schedule:
            per_schedule[appt.schedule_id] = appointment_vars(db, appt)
        out.append({**per_schedule[appt.schedule_id], "time": when(appt.start_at)})
    return out


@dataclass(frozen=True)
class Place:
    """A place by level, for the slip: each empty when the hospital did not record it."""

    campus: str = ""
    building: str = ""
    floor: str = ""
    room: str = ""

    @classmethod
    def of(cls, chain: list[Location]) -> Place:
        return cls(**{loc.kind: loc.name for loc in chain
                      if loc.kind in ("campus", "building", "floor", "room")})
