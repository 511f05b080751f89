"""What the portal and the kiosk pages share: a visit as a patient reads it, and booking
from a form behind the same protections as the API.

A form booking passes the BK-8 gate of the API (rate limits per account and address, the
random draw in the seconds after a pool opens) and uses the form's one-time token as its
idempotency key: a form submitted twice books once, and the second answer is the first
booking.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi import Request
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import Now, Units
from onetrip.errors import InvalidInput, OnetripError
from onetrip.identity.service import Principal
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Department, Hospital, Location, Practitioner
from onetrip.scheduling import booking, gate, idempotency, queue, service
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import (
    Channel,
    cancel_deadline,
)

STATUS_LABELS = {"held": "锁号中", "booked": "已预约", "arrived": "已报到", "fulfilled": "已就诊",
                 "cancelled": "已取消", "noshow": "爽约", "expired": "已失效"}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def local_day(now: datetime) -> date:
    """The hospital's calendar date at ``now`` (tests drive ``now`` through the clock)."""
    return now.astimezone(get_settings().tz).date()


def new_form_token() -> str:
    """A one-time token for one booking form; it becomes the booking's idempotency key."""
    return secrets.token_urlsafe(18)


class FormExpired(InvalidInput):
    code = "form_expired"
    message = "页面已过期，请重新选择号源"


@dataclass(frozen=True)
class Place:
    """Where the visit happens, as signs in the hospital name it."""

    campus: str = ""
    building: str = ""
    floor: str = ""
    room: str = ""

    @property
    def text(self) -> str:
        return " ".join(p for p in (self.campus, self.building, self.floor, self.room) if p)


def place_of(db: Session, schedule: Schedule) -> Place | None:
    """Campus, building, floor and room of the session (or of its department)."""
    location_id = schedule.location_id
    if location_id is None:
        location_id = db.get_one(Department, schedule.department_id).location_id
    names: dict[str, str] = {}
    loc = db.get(Location, location_id) if location_id is not None else None
    while loc is not None:
        names[loc.kind] = loc.name
        loc = loc.parent
    if not names:
        return None
    # Demo and many hospitals name a room "门诊楼3楼305诊室": show each level's own part.
    building = names.get("building", "")
    floor = names.get("floor", "")
    room = names.get("room", "")
    return Place(names.get("campus", ""), building, floor.removeprefix(building),
                 room.removeprefix(floor))


@dataclass(frozen=True)
class Visit:
    """One appointment with everything its confirmation and ticket show."""

    appointment: Appointment
    schedule: Schedule
    hospital: Hospital
    department: Department
    doctor: Practitioner | None
    place: Place | None
    fee: Decimal
    number: int
    cancel_deadline: datetime
    check_in_opens: datetime
    late_after_minutes: int
    status_label: str
    cancellable: bool
    check_in_open: bool


@dataclass(frozen=True)
class Terms:
    """What a booking of one slot commits the patient to, said before and after booking."""

    cancel_deadline: datetime
    check_in_opens: datetime
    late_after_minutes: int
    check_in_closes: datetime


def terms_of(db: Session, slot: Slot, appointment: Appointment | None = None) -> Terms:
    """BK-6: the free-cancellation deadline (the working day before, 16:00 by default) and
    when check-in opens for a slot, by its hospital's policy."""
    schedule = db.get_one(Schedule, slot.schedule_id)
    policy, _rule = service.policy_for(db, schedule.hospital_id)
    deadline = cancel_deadline(
        org_calendar.working_day_before(db, schedule.hospital_id, schedule.day), policy,
        get_settings().tz)
    return Terms(deadline, slot.start_at - timedelta(minutes=policy.check_in_opens_minutes),
                 policy.late_after_minutes,
                 queue.check_in_closes_at(schedule, policy, appointment))


def visit_of(db: Session, appt: Appointment, now: datetime) -> Visit:
    schedule = db.get_one(Schedule, appt.schedule_id)
    doctor_id = schedule.substitute_practitioner_id or schedule.practitioner_id
    slot = db.get_one(Slot, appt.slot_id)
    terms = terms_of(db, slot, appt)
    deadline, opens = terms.cancel_deadline, terms.check_in_opens
    return Visit(
        appointment=appt, schedule=schedule, hospital=db.get_one(Hospital, appt.hospital_id),
        department=db.get_one(Department, appt.department_id),
        doctor=db.get(Practitioner, doctor_id) if doctor_id else None,
        place=place_of(db, schedule), fee=schedule.fee, number=slot.seq + 1,
        cancel_deadline=deadline, check_in_opens=opens,
        late_after_minutes=terms.late_after_minutes,
        status_label=STATUS_LABELS.get(appt.status, appt.status),
        cancellable=appt.status == "held" or (appt.status == "booked" and now <= deadline),
        check_in_open=(appt.status == "booked" and schedule.status != "stopped"
                       and opens <= now < terms.check_in_closes))


def booking_gate(channel_of: Callable[[Request], Channel],
                 ) -> Callable[..., Awaitable[None]]:
    """The BK-8 gate as a page dependency for routes with a ``slot_id`` path."""

    async def admit(request: Request, slot_id: int, now: Now, units: Units) -> None:
        # The gate reads only the target and the channel; the patient is checked later.
        await gate.admit_booking(request, now, units, schedule_id=None, slot_id=slot_id,
                                 channel=channel_of(request))

    return admit


def book_once(db: Session, *, principal: Principal, form_token: str, patient_id: int,
              slot_id: int, channel: Channel, now: datetime) -> Appointment:
    """Book a slot from a form; the same form token again returns the first booking.

    Raises FormExpired without a well-formed token and the errors of ``booking.book``;
    nothing is written when it raises.
    """
    if not _TOKEN.match(form_token):
        raise FormExpired()
    body = {"slot_id": slot_id, "patient_id": patient_id, "channel": channel.value}
    with db.begin_nested():
        record = idempotency.claim(db, owner=idempotency.principal_key(principal),
                                   key=f"form:{form_token}",
                                   digest=idempotency.request_hash("/pages/book", body), now=now)
        if record.status_code:
            return booking.access_appointment(db, principal, int(record.body["appointment_id"]))
        appt = booking.book(db, principal=principal, patient_id=patient_id, channel=channel,
                            slot_id=slot_id, now=now)
        idempotency.remember(db, record, 201, {"appointment_id": appt.id})
    return appt


def form_error(exc: OnetripError, fields: dict[str, str]) -> dict[str, str]:
    """``{field: message}`` for a refused form: the field the error code belongs to, else
    ``_form`` (shown above the form)."""
    return {fields.get(exc.code, "_form"): exc.text}


def time_groups(slots: list[Slot]) -> list[tuple[str, list[Slot]]]:
    """Free slots grouped by their local start minute (BK-3), earliest first."""
    tz = get_settings().tz
    groups: dict[str, list[Slot]] = {}
    for slot in slots:
        groups.setdefault(slot.start_at.astimezone(tz).strftime("%H:%M"), []).append(slot)
    return list(groups.items())
