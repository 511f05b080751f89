"""What messages and slips say about a visit: time, department, doctor, place, deadline.

Read from the scheduling and org domains (never written); shared by the subscribers that
queue messages and by the paper slip (RM-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import among
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


class Spot(NamedTuple):
    """One level of a place: campus, building, floor or room."""

    id: int
    parent_id: int | None
    kind: str
    name: str


@dataclass(frozen=True)
class SessionFacts:
    """What messages say of one session, looked up once for all its appointments."""

    department: str
    doctor: str
    place: list[Spot]
    cancel_deadline: datetime


#: The columns of a session that messages need (``sessions`` takes these rows or sessions).
_SESSION = (Schedule.id, Schedule.department_id, Schedule.practitioner_id,
            Schedule.substitute_practitioner_id, Schedule.location_id, Schedule.hospital_id,
            Schedule.day)


def sessions(db: Session, schedules: Sequence[Any]) -> dict[int, SessionFacts]:
    """Department, doctor (the substitute if one took over), place from the campus down and
    the free-cancellation deadline (BK-6) of each session: one read per table for all, of
    the columns needed only (a batch of bookings may span a hundred sessions)."""
    if not schedules:
        return {}
    depts = {d.id: d for d in db.execute(
        select(Department.id, Department.name, Department.location_id).where(
            among(db, Department.id, {s.department_id for s in schedules})))}
    doctor_ids = {s.substitute_practitioner_id or s.practitioner_id for s in schedules} - {None}
    doctors = {p.id: p for p in db.execute(
        select(Practitioner.id, Practitioner.name, Practitioner.title).where(
            among(db, Practitioner.id, doctor_ids)))} if doctor_ids else {}
    hospital_ids = {s.hospital_id for s in schedules}
    places = {row.id: Spot(*row) for row in db.execute(
        select(Location.id, Location.parent_id, Location.kind, Location.name).where(
            among(db, Location.hospital_id, hospital_ids)))}
    policies = scheduling_service.policies_for(db, hospital_ids)
    tz = get_settings().tz
    out = {}
    for s in schedules:
        dept = depts[s.department_id]
        doctor = doctors.get(s.substitute_practitioner_id or s.practitioner_id or 0)
        chain: list[Spot] = []
        spot = places.get(s.location_id or dept.location_id or 0)
        while spot is not None and len(chain) < 8:
            chain.append(spot)
            spot = places.get(spot.parent_id or 0)
        deadline = cancel_deadline(org_calendar.previous_working_day(s.day),
                                   policies[s.hospital_id][0], tz)
        out[s.id] = SessionFacts(dept.name, f"{doctor.name}{TITLES.get(doctor.title, '')}"
                                 if doctor else "", chain[::-1], deadline)
    return out


def place_of(db: Session, schedule: Schedule) -> list[Spot]:
    """The session's place from the campus down (campus, building, floor, room as known)."""
    return sessions(db, [schedule])[schedule.id].place


def doctor_of(db: Session, schedule: Schedule) -> str:
    """``王明主任医师``: the substitute if one took the session, else the scheduled doctor."""
    return sessions(db, [schedule])[schedule.id].doctor


def _vars(session: SessionFacts, start_at: datetime) -> dict[str, Any]:
    return {"time": when(start_at), "department": session.department,
            "doctor": session.doctor,
            "place": session.place[-1].name if session.place else session.department,
            "checkin_minutes": get_settings().notify_checkin_minutes}


def visit_vars(db: Session, schedule: Schedule, start_at: datetime) -> dict[str, Any]:
    """What every appointment message shows: time, department, doctor and place."""
    return _vars(sessions(db, [schedule])[schedule.id], start_at)


def deadline_of(db: Session, appt: Appointment) -> datetime:
    """BK-6: the moment a patient can still cancel without penalty."""
    return sessions(db, [db.get_one(Schedule, appt.schedule_id)])[appt.schedule_id] \
        .cancel_deadline


def appointment_vars(db: Session, appt: Appointment) -> dict[str, Any]:
    return appointments_vars(db, [appt])[0]


def appointments_vars(db: Session, appts: Sequence[Any]) -> list[dict[str, Any]]:
    """``appointment_vars`` of many appointments (or rows with their ``schedule_id`` and
    ``start_at``), each session looked up once."""
    found = sessions(db, db.execute(select(*_SESSION).where(
        among(db, Schedule.id, {a.schedule_id for a in appts}))).all())
    return [{**_vars(found[a.schedule_id], a.start_at),
             "cancel_deadline": when(found[a.schedule_id].cancel_deadline)} for a in appts]


@dataclass(frozen=True)
class Place:
    """A place by level, for the slip: each empty when the hospital did not record it."""

    campus: str = ""
    building: str = ""
    floor: str = ""
    room: str = ""

    @classmethod
    def of(cls, chain: Sequence[Spot]) -> Place:
        return cls(**{loc.kind: loc.name for loc in chain
                      if loc.kind in ("campus", "building", "floor", "room")})
