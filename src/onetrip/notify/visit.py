"""What messages and slips say about a visit: time, department, doctor, place, deadline.

Read from the scheduling and org domains (never written); shared by the subscribers that
queue messages and by the paper slip (RM-1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import among_bound, read_built
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


def sessions(db: Session, schedule_ids: Iterable[int]) -> dict[int, SessionFacts]:
    """Department, doctor (the substitute if one took over), place from the campus down and
    the free-cancellation deadline (BK-6) of each session: one read of the sessions with
    their department and doctor, one of their hospitals' places (a batch of bookings may
    span a hundred sessions)."""
    ids = set(schedule_ids)
    if not ids:
        return {}
    rows = read_built(db, _sessions_statement, {"ids": list(ids)}).all()
    hospital_ids = {s.hospital_id for s in rows}
    places = {row.id: Spot(*row) for row in read_built(
        db, _places_statement, {"ids": list(hospital_ids)})}
    policies = scheduling_service.policies_for(db, hospital_ids)
    tz = get_settings().tz
    working_days = org_calendar.previous_working_days(db, {(s.hospital_id, s.day) for s in rows})
    out = {}
    for s in rows:
        chain: list[Spot] = []
        spot = places.get(s.location_id or s.department_location_id or 0)
        while spot is not None and len(chain) < 8:
            chain.append(spot)
            spot = places.get(spot.parent_id or 0)
        deadline = cancel_deadline(working_days[(s.hospital_id, s.day)],
                                   policies[s.hospital_id][0], tz)
        doctor = f"{s.doctor}{TITLES.get(s.title, '')}" if s.doctor is not None else ""
        out[s.id] = SessionFacts(s.department, doctor, chain[::-1], deadline)
    return out


@lru_cache(maxsize=4)
def _sessions_statement(dialect: str) -> Any:
    """Sessions with their department and doctor (the substitute if one took over)."""
    s, d, p = (cast(Table, m.__table__).c for m in (Schedule, Department, Practitioner))
    doctor_id = func.coalesce(s.substitute_practitioner_id, s.practitioner_id)
    return (select(s.id, s.hospital_id, s.day, s.location_id, d.name.label("department"),
                   d.location_id.label("department_location_id"), p.name.label("doctor"),
                   p.title)
            .join_from(cast(Table, Schedule.__table__), cast(Table, Department.__table__),
                       d.id == s.department_id)
            .outerjoin(cast(Table, Practitioner.__table__), p.id == doctor_id)
            .where(among_bound(dialect, s.id, "ids")))


@lru_cache(maxsize=4)
def _places_statement(dialect: str) -> Any:
    """Every place of the hospitals."""
    loc = cast(Table, Location.__table__).c
    return select(loc.id, loc.parent_id, loc.kind, loc.name).where(
        among_bound(dialect, loc.hospital_id, "ids"))


def place_of(db: Session, schedule: Schedule) -> list[Spot]:
    """The session's place from the campus down (campus, building, floor, room as known)."""
    return sessions(db, [schedule.id])[schedule.id].place


def doctor_of(db: Session, schedule: Schedule) -> str:
    """``王明主任医师``: the substitute if one took the session, else the scheduled doctor."""
    return sessions(db, [schedule.id])[schedule.id].doctor


def _vars(session: SessionFacts, start_at: datetime) -> dict[str, Any]:
    return {"time": when(start_at), "department": session.department,
            "doctor": session.doctor,
            "place": session.place[-1].name if session.place else session.department,
            "checkin_minutes": get_settings().notify_checkin_minutes}


def visit_vars(db: Session, schedule: Schedule, start_at: datetime) -> dict[str, Any]:
    """What every appointment message shows: time, department, doctor and place."""
    return _vars(sessions(db, [schedule.id])[schedule.id], start_at)


def deadline_of(db: Session, appt: Appointment) -> datetime:
    """BK-6: the moment a patient can still cancel without penalty."""
    return sessions(db, [appt.schedule_id])[appt.schedule_id].cancel_deadline


def appointment_vars(db: Session, appt: Appointment, *, at: datetime) -> dict[str, Any]:
    return appointments_vars(db, [appt], at=at)[0]


def appointments_vars(db: Session, appts: Sequence[Any], *,
                      at: datetime) -> list[dict[str, Any]]:
    """``appointment_vars`` of many appointments (or rows with their ``schedule_id`` and
    ``start_at``), each session looked up once; ``at`` is when the message is written."""
    found = sessions(db, {a.schedule_id for a in appts})
    return [{**_vars(found[a.schedule_id], a.start_at),
             "cancel_deadline": when(found[a.schedule_id].cancel_deadline),
             "cancel_rule": cancel_rule(found[a.schedule_id].cancel_deadline, at)}
            for a in appts]


def cancel_rule(deadline: datetime, at: datetime) -> str:
    """BK-6 in a message: until when the patient may still cancel online, or, for a visit
    booked (or a message written) after that, where to go instead."""
    if at < deadline:
        return f"如需取消，请在{when(deadline)}前操作。"
    return "已过网上取消截止时间，如需取消请到窗口办理。"


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
