"""Schedule, Slot and Appointment over the scheduling domain (reads and searches).

A slot is ``free`` only when the one asking could book it now: its pool is released and
open to the public online channel, or to the channel the principal's role books through at
its own hospital (window, kiosk, clinic; referral into the alliance for a primary-care
doctor). Referral-only, window-only, priority and clinic slots are therefore never free to
the public; they show as ``busy-unavailable`` (BK-4, BK-5).

Nor is a slot free while its hospital pauses booking overnight, from the next-day cutoff
(20:00 by default) to the same-day opening (07:00) before its day: the booking engine then
refuses every channel (``pool_closed``), and what FHIR offers must be what ``$book`` books.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.sql.elements import ColumnElement

from onetrip.errors import PermissionDenied
from onetrip.fhir import resources as fr
from onetrip.fhir.context import Context, Found, page, page_list
from onetrip.fhir.outcome import InvalidSearch, UnknownResource
from onetrip.fhir.params import (
    Query,
    date_condition,
    reference_id,
    reference_int,
    resource_id,
    token,
)
from onetrip.identity import service as identity_service
from onetrip.identity.rules import ACCOUNT_ROLES, Role
from onetrip.identity.service import Principal
from onetrip.numbers import parse_id
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.errors import ChannelNotAllowed
from onetrip.scheduling.models import Appointment, Schedule, Slot, WaitlistEntry
from onetrip.scheduling.rules import (
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    Channel,
    Pool,
    PoolTimer,
    effective_pool,
)

#: The channel a role books through over FHIR (scheduling.rules.ROLE_CHANNELS): patients
#: and proxies as an app, clerks at the window, kiosks as kiosks; a doctor in clinic at
#: its own hospital and by referral elsewhere in its alliance.
_ROLE_CHANNEL = {Role.patient: Channel.app, Role.proxy: Channel.app, Role.window: Channel.window,
                 Role.hospital_admin: Channel.window, Role.kiosk: Channel.kiosk}


def booking_channel(principal: Principal, hospital_id: int) -> Channel:
    """The channel this principal books a slot of ``hospital_id`` through."""
    if principal.role is Role.doctor:
        return Channel.clinic if principal.hospital_id == hospital_id else Channel.referral
    channel = _ROLE_CHANNEL.get(principal.role)
    if channel is None:
        raise ChannelNotAllowed(detail={"role": principal.role.value})
    return channel


def bookable(ctx: Context, hospital_ids: Iterable[int] | None = None) -> ColumnElement[bool]:
    """SQL over Slot joined to Schedule: whoever asks could book the slot now, as far as
    its pool and its day's booking calendar go. ``hospital_ids`` narrows the policies read
    when the caller knows which hospitals it asks about."""
    # BK-1: every channel offers what the engine books, FHIR clients as much as the pages.
    # The overnight pause is each hospital's booking calendar (PoolPolicy.next_day_cutoff
    # and same_day_open_time), which REQUIREMENTS.md gives no ID of its own; the engine
    # refuses every booking of a paused day, so none of its slots is bookable here either.
    open_now = ~scheduling_service.in_overnight_pause(ctx.db, ctx.now, hospital_ids)
    return and_(open_now, _pool_open(ctx))


def _pool_open(ctx: Context) -> ColumnElement[bool]:
    """SQL: the slot's pool is open now to whoever asks."""
    now, principal = ctx.now, ctx.principal
    cond = scheduling_service.open_to(CHANNEL_POOLS[Channel.web], now)
    if principal is None or principal.hospital_id is None or principal.role in ACCOUNT_ROLES:
        return cond
    try:
        own = booking_channel(principal, principal.hospital_id)
    except ChannelNotAllowed:
        return cond
    cond = or_(cond, and_(Schedule.hospital_id == principal.hospital_id,
                          scheduling_service.open_to(CHANNEL_POOLS[own], now)))
    if principal.role is Role.doctor:
        home = ctx.db.get(Hospital, principal.hospital_id)
        if home is not None and home.kind == "primary_care" and home.alliance_id is not None:
            alliance = select(Hospital.id).where(Hospital.alliance_id == home.alliance_id)
            cond = or_(cond, and_(Schedule.hospital_id.in_(alliance),
                                  scheduling_service.open_to(CHANNEL_POOLS[Channel.referral],
                                                             now)))
    return cond


def slot_status(now: datetime, open_cond: ColumnElement[bool]) -> Any:
    """SQL: the FHIR status of a slot (joined to its schedule) at ``now``.

    A slot nobody booked or holds but that cannot be booked now (a pool not open to the
    caller, or its day's booking paused overnight, see ``bookable``) is ``busy-unavailable``:
    FHIR's "cannot be scheduled". Not ``busy``, which says an appointment fills it (and
    would count in anyone's booked figures), nor ``free``, which $book would then refuse.
    """
    held = and_(Slot.status == "held", or_(Slot.held_until.is_(None), Slot.held_until > now))
    return case((Schedule.status.not_in(BOOKABLE_SCHEDULE_STATUSES), "busy-unavailable"),
                (Slot.status == "blocked", "busy-unavailable"),
                (Slot.status == "booked", "busy"),
                (held, "busy-tentative"),
                (and_(Slot.start_at > now, open_cond), "free"),
                else_="busy-unavailable")


def pool_now(row: Slot, now: datetime) -> str:
    timer = PoolTimer(row.release_at, row.return_at,
                      Pool(row.return_pool) if row.return_pool else None)
    pool = effective_pool(Pool(row.pool), timer, now)
    return pool.value if pool else row.pool


def doctor_of(ctx: Context, s: Schedule) -> Practitioner | None:
    ident = fr.schedule_doctor(s)
    return ctx.row(Practitioner, ident) if ident else None


def department_of(ctx: Context, department_id: int) -> Department:
    return ctx.row(Department, department_id)


# --- Schedule ---------------------------------------------------------------------------


def schedule_resource(ctx: Context, s: Schedule) -> dict[str, Any]:
    return fr.schedule(s, department_of(ctx, s.department_id), doctor_of(ctx, s))


def read_schedule(ctx: Context, ident: str) -> dict[str, Any]:
    s = ctx.db.get(Schedule, resource_id(ident))
    if s is None:
        raise UnknownResource(detail={"id": ident})
    return schedule_resource(ctx, s)


def _actor_filter(values: list[str]) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for raw in values:
        kind = raw.rsplit("/", 2)[-2] if "/" in raw else ""
        if kind == "Practitioner":
            pid = reference_int(raw, kind, "actor")
            out.append(or_(Schedule.substitute_practitioner_id == pid,
                           and_(Schedule.practitioner_id == pid,
                                Schedule.substitute_practitioner_id.is_(None))))
        elif kind == "HealthcareService":
            out.append(Schedule.department_id == reference_int(raw, kind, "actor"))
        elif kind == "Location":
            out.append(location_filter(reference_id(raw, kind, "actor")))
        else:
            raise InvalidSearch("参数actor应引用Practitioner、HealthcareService或Location",
                                detail=[{"field": "actor"}])
    return out


def location_filter(ident: str) -> ColumnElement[bool]:
    """``site-<hospital>`` (a hospital's site) or ``<location>`` (a room or building)."""
    value = parse_id(ident.removeprefix("site-"))
    if value is None:
        raise InvalidSearch("参数location的资源编号无效", detail=[{"field": "location"}])
    if ident.startswith("site-"):
        return Schedule.hospital_id == value
    return Schedule.location_id == value


def specialty_filter(query: Query, name: str = "specialty") -> list[ColumnElement[bool]]:
    codes = [token(v)[1] for v in query.all(name)]
    if not codes:
        return []
    return [Schedule.department_id.in_(select(Department.id).where(Department.code.in_(codes)))]


def search_schedules(ctx: Context, query: Query) -> Found:
    stmt = select(Schedule).order_by(Schedule.start_at, Schedule.id)
    if actors := _actor_filter(query.all("actor")):
        stmt = stmt.where(or_(*actors))
    for raw in query.params.get("date", []):
        stmt = stmt.where(date_condition(Schedule.start_at, raw, "date"))
    stmt = stmt.where(*specialty_filter(query))
    if orgs := [reference_int(v, "Organization", "organization")
                for v in query.all("organization")]:
        stmt = stmt.where(Schedule.hospital_id.in_(orgs))
    if (active := query.one("active")) in ("true", "false"):
        stmt = stmt.where((Schedule.status != "stopped") if active == "true"
                          else (Schedule.status == "stopped"))
    return page(ctx, query, stmt, lambda row: schedule_resource(ctx, row[0]))


# --- Slot -------------------------------------------------------------------------------

_SLOT_STATUSES = ("free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error")


def slot_resource(ctx: Context, row: Slot, s: Schedule, status: str) -> dict[str, Any]:
    h = ctx.row(Hospital, s.hospital_id)
    extensions = fr.booking_extensions(ctx.site, s, h, doctor_of(ctx, s), row.id) \
        if status == "free" else None
    return fr.slot(row, s, status, pool_now(row, ctx.now), extensions)


def read_slot(ctx: Context, ident: str) -> dict[str, Any]:
    stmt = (select(Slot, Schedule, slot_status(ctx.now, bookable(ctx)))
            .join(Schedule, Slot.schedule_id == Schedule.id).where(Slot.id == resource_id(ident)))
    row = ctx.db.execute(stmt).first()
    if row is None:
        raise UnknownResource(detail={"id": ident})
    return slot_resource(ctx, row[0], row[1], row[2])


def search_slots(ctx: Context, query: Query) -> Found:
    status = slot_status(ctx.now, bookable(ctx))
    stmt = (select(Slot, Schedule, status).join(Schedule, Slot.schedule_id == Schedule.id)
            .order_by(Slot.start_at, Slot.id))
    if schedules := [reference_int(v, "Schedule", "schedule") for v in query.all("schedule")]:
        stmt = stmt.where(Slot.schedule_id.in_(schedules))
    for raw in query.params.get("start", []):
        stmt = stmt.where(date_condition(Slot.start_at, raw, "start"))
    if statuses := query.all("status"):
        unknown = [s for s in statuses if s not in _SLOT_STATUSES]
        if unknown:
            raise InvalidSearch("参数status取值无效", detail=[{"field": "status",
                                                              "values": unknown}])
        stmt = stmt.where(status.in_(statuses))
    stmt = stmt.where(*specialty_filter(query))
    if services := [v for v in query.all("service-type")]:
        stmt = stmt.where(Schedule.service_level.in_([token(v)[1] for v in services]))
    return page(ctx, query, stmt, lambda row: slot_resource(ctx, row[0], row[1], row[2]))


# --- Appointment ------------------------------------------------------------------------

#: FHIR Appointment.status -> OneTrip statuses.
_STATUS_IN = {"pending": ["held"], "booked": ["booked"], "arrived": ["arrived"],
              "fulfilled": ["fulfilled"], "cancelled": ["cancelled", "expired"],
              "noshow": ["noshow"], "waitlist": []}


def appointment_resource(ctx: Context, a: Appointment) -> dict[str, Any]:
    return fr.appointment(a, department_of(ctx, a.department_id), doctor_of(ctx, a.schedule))


def _waitlist_resource(ctx: Context, e: WaitlistEntry) -> dict[str, Any]:
    s = ctx.db.get_one(Schedule, e.schedule_id)
    return fr.waitlisted(e, s, department_of(ctx, s.department_id), doctor_of(ctx, s))


def read_appointment(ctx: Context, ident: str) -> dict[str, Any]:
    principal = ctx.signed_in()
    if ident.startswith("waitlist-"):
        entry = ctx.db.get(WaitlistEntry, resource_id(ident.removeprefix("waitlist-")))
        if entry is None or entry.status not in ("waiting", "offered"):
            raise UnknownResource(detail={"id": ident})
        identity_service.access_patient(ctx.db, principal, entry.patient_id)
        return _waitlist_resource(ctx, entry)
    booking.not_by_number_at_a_kiosk(principal)
    appt = booking.access_appointment(ctx.db, principal, resource_id(ident))
    return appointment_resource(ctx, appt)


def _patients(ctx: Context, query: Query) -> list[int]:
    """The patients searched: those named (each access checked and audited), or every
    patient of a signed-in phone account. Staff must name the patient."""
    principal = ctx.signed_in()
    named = [reference_int(v, "Patient", "patient") for v in
             query.all("patient") + [v for v in query.all("actor") if "Patient/" in v]]
    if not named and principal.role in ACCOUNT_ROLES:
        named = sorted(principal.patient_ids)
    elif not named:
        raise PermissionDenied("请指定就诊人（patient 参数）", detail={"field": "patient"})
    return [identity_service.access_patient(ctx.db, principal, pid).id for pid in named]


def search_appointments(ctx: Context, query: Query) -> Found:
    """ITI-118 Find Existing Appointments: a patient's appointments and waitlist entries."""
    patient_ids = _patients(ctx, query)
    statuses = query.all("status")
    unknown = [s for s in statuses if s not in _STATUS_IN]
    if unknown:
        raise InvalidSearch("参数status取值无效", detail=[{"field": "status", "values": unknown}])
    stmt = (select(Appointment).where(Appointment.patient_id.in_(patient_ids))
            .order_by(Appointment.start_at.desc(), Appointment.id.desc()))
    waits = (select(WaitlistEntry).join(Schedule, WaitlistEntry.schedule_id == Schedule.id)
             .where(WaitlistEntry.patient_id.in_(patient_ids),
                    WaitlistEntry.status.in_(("waiting", "offered")))
             .order_by(Schedule.start_at.desc(), WaitlistEntry.id.desc()))
    if statuses:
        stmt = stmt.where(Appointment.status.in_([s for f in statuses for s in _STATUS_IN[f]]))
    for raw in query.params.get("date", []):
        stmt = stmt.where(date_condition(Appointment.start_at, raw, "date"))
        waits = waits.where(date_condition(Schedule.start_at, raw, "date"))
    found = [appointment_resource(ctx, a) for a in ctx.db.scalars(stmt)]
    if not statuses or "waitlist" in statuses:
        found.extend(_waitlist_resource(ctx, e) for e in ctx.db.scalars(waits))
    return page_list(query, found)
