"""The booking engine's core: many bookings in one transaction, each statement set-based.

``book_many`` takes a batch of booking requests and answers each with the appointment it
made or the error that refused it; one refusal never undoes another booking. A batch of one
is how a single booking is made (``booking.book``); the group committer (``groupcommit``)
hands it every request that arrived while the previous batch was committing.

The invariants stay in the database (BK-3, BK-8):

* a slot is claimed only by a conditional UPDATE that succeeds while it is free (or its hold
  has run out), released, and in a pool open to the channel (``claims``); on PostgreSQL
  the slots are picked with ``FOR UPDATE SKIP LOCKED``, so concurrent batches spread over a
  schedule's slots and never wait for each other's;
* appointments enter under partial unique indexes (one active claim per slot, per patient per
  department per day, per patient per schedule);
* a patient's limits are counted under a per-patient lock (an advisory lock on PostgreSQL,
  the write lock on SQLite), taken for the whole batch in patient order.

A batch costs about the same dozen statements whatever its size: the reads of schedules,
policies, patients and histories, the locks, one claim statement per pool set (for all its
schedules), one insert of the appointments, one of their audit rows, and the notify
domain's outbox rows through the events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.config import get_settings
from onetrip.db import among, among_bound, insert_rows
from onetrip.errors import OnetripError
from onetrip.identity import audit
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.scheduling import claims, penalties, service
from onetrip.scheduling.claims import Pending
from onetrip.scheduling.errors import (
    ChannelNotAllowed,
    LimitReached,
    PatientRestricted,
    PoolClosed,
    ScheduleNotFound,
    ScheduleNotOpen,
    SlotNotFound,
    SlotTaken,
)
from onetrip.scheduling.events import AppointmentBooked, AppointmentHeld
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import (
    ACTIVE_STATUSES,
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    ONLINE_CHANNELS,
    ROLE_CHANNELS,
    Channel,
    PenaltyRule,
    PoolPolicy,
    booking_paused,
    booking_window,
)

#: The active statuses written into the statements' text: the planner then sees that the
#: partial unique indexes on active appointments answer them (bound values it cannot).
_ACTIVE = [service.constant(s.value) for s in ACTIVE_STATUSES]
_PATIENT_LOCK = 7_301  # advisory-lock namespace for per-patient booking limits
_LOCK_PATIENTS = text("SELECT pg_advisory_xact_lock(:ns, pid) FROM unnest(CAST(:ids AS "
                      "integer[])) AS pid ORDER BY pid")
_APPOINTMENT = cast(Table, Appointment.__table__)
_SLOT = cast(Table, Slot.__table__)


@dataclass(frozen=True)
class BookingRequest:
    """One booking (or hold) for a real-name patient: a given slot, or a schedule's earliest
    free slot of a pool open to the channel."""

    principal: Principal
    patient_id: int
    channel: Channel
    slot_id: int | None = None
    schedule_id: int | None = None
    hold: bool = False


@dataclass(frozen=True)
class Booked:
    """The appointment a request made, as written (no second read)."""

    id: int
    slot_id: int
    schedule_id: int
    patient_id: int
    hospital_id: int
    department_id: int
    day: date
    start_at: datetime
    pool: str
    channel: str
    status: str
    hold_expires_at: datetime | None
    booked_at: datetime | None
    cancelled_at: datetime | None = None
    checked_in_at: datetime | None = None
    rebooked_from_id: int | None = None


Outcome = Booked | OnetripError


@dataclass
class _Context:
    """What the batch read once: schedules, hospitals, policies and master patients."""

    schedules: dict[int, Any]
    slot_schedule: dict[int, int]
    hospitals: dict[int, Any]
    policies: dict[int, tuple[PoolPolicy, PenaltyRule]]
    masters: list[int | OnetripError]
    region_hospitals: dict[int, set[int]] = field(default_factory=dict)


def book_many(db: Session, requests: Sequence[BookingRequest], *,
              now: datetime) -> list[Outcome]:
    """Book every request that can be booked; answer the others with their refusal.

    Requests are served in the order given (a fair draw decides that order in the seconds
    after a pool opens). A refused request writes nothing, except the audit row of a denied
    access to a patient. Raises only on a database failure: the caller rolls back.
    """
    out: list[Outcome | None] = [None] * len(requests)
    if not requests:
        return []
    ctx = _read_context(db, requests)
    pending: list[Pending] = []
    for i, req in enumerate(requests):
        try:
            pending.append(_admit(ctx, i, req, now))
        except OnetripError as exc:
            out[i] = exc
    _refuse_restricted(db, ctx, pending, out, now)
    pending = [p for p in pending if out[p.index] is None]
    # One request per patient per round: a patient's second request of the batch is weighed
    # against what the first one booked (or did not).
    while pending:
        seen: set[int] = set()
        this_round: list[Pending] = []
        later: list[Pending] = []
        for p in pending:
            (later if p.patient_id in seen else this_round).append(p)
            seen.add(p.patient_id)
        _book_round(db, this_round, out, now)
        pending = later
    assert all(o is not None for o in out), "every request is answered"
    return [o for o in out if o is not None]


# --- reads ---------------------------------------------------------------------------------


def _read_context(db: Session, requests: Sequence[BookingRequest]) -> _Context:
    conn = db.connection()
    dialect = conn.dialect.name
    slot_ids = {r.slot_id for r in requests if r.slot_id is not None}
    slot_schedule: dict[int, int] = {}
    if slot_ids:
        slot_schedule = dict(conn.execute(_reads(dialect).slots, {"ids": list(slot_ids)}).all())
    schedule_ids = {r.schedule_id for r in requests if r.slot_id is None and r.schedule_id}
    schedule_ids |= set(slot_schedule.values())
    schedules = {row.id: row for row in conn.execute(
        _reads(dialect).schedules, {"ids": list(schedule_ids)})} if schedule_ids else {}
    # Only a referral needs the hospitals (the alliance of the referring clinic, BK-4).
    referrals = [r for r in requests if r.channel is Channel.referral]
    hospital_ids = {row.hospital_id for row in schedules.values()} if referrals else set()
    hospital_ids |= {r.principal.hospital_id for r in referrals if r.principal.hospital_id}
    hospitals = {row.id: row for row in conn.execute(
        _reads(dialect).hospitals, {"ids": list(hospital_ids)})} if hospital_ids else {}
    policies = service.policies_for(db, {row.hospital_id for row in schedules.values()})
    masters = identity_service.access_patients(
        db, [(r.principal, r.patient_id) for r in requests], action="appointment.book",
        record_allowed=False)
    return _Context(schedules, slot_schedule, hospitals, policies, masters)


@dataclass(frozen=True)
class _Reads:
    """The batch's reads, built once per dialect (their values bound at execution)."""

    slots: Any
    schedules: Any
    hospitals: Any
    limits: Any


@lru_cache(maxsize=4)
def _reads(dialect: str) -> _Reads:
    s, h, t = cast(Table, Schedule.__table__).c, cast(Table, Hospital.__table__).c, _APPOINTMENT.c
    return _Reads(
        slots=select(_SLOT.c.id, _SLOT.c.schedule_id).where(
            among_bound(dialect, _SLOT.c.id, "ids")),
        schedules=select(s.id, s.hospital_id, s.department_id, s.day, s.status).where(
            among_bound(dialect, s.id, "ids")),
        hospitals=select(h.id, h.kind, h.alliance_id).where(among_bound(dialect, h.id, "ids")),
        limits=select(t.patient_id, t.schedule_id, t.department_id, t.day, t.status,
                      t.hold_expires_at).where(
            among_bound(dialect, t.patient_id, "patients"), t.status.in_(_ACTIVE),
            t.start_at > bindparam("since", type_=t.start_at.type)))


def _admit(ctx: _Context, index: int, req: BookingRequest, now: datetime) -> Pending:
    """The checks that need no lock, in the order a single booking always made them."""
    if req.slot_id is not None:
        schedule_id = ctx.slot_schedule.get(req.slot_id)
        if schedule_id is None:
            raise SlotNotFound(detail={"slot_id": req.slot_id})
    elif req.schedule_id is not None:
        schedule_id = req.schedule_id
    else:
        raise SlotNotFound("请指定号源或排班")
    schedule = ctx.schedules.get(schedule_id)
    if schedule is None:
        raise ScheduleNotFound(detail={"schedule_id": schedule_id})
    check_channel(req.principal, req.channel, schedule.hospital_id, ctx.hospitals)
    master = ctx.masters[index]
    if isinstance(master, OnetripError):
        raise master
    if schedule.status not in BOOKABLE_SCHEDULE_STATUSES:
        raise ScheduleNotOpen(detail={"schedule_id": schedule.id, "status": schedule.status})
    policy = ctx.policies[schedule.hospital_id][0]
    if booking_paused(booking_window(schedule.day, policy, get_settings().tz), now):
        raise PoolClosed(f"次日号源预约已于{policy.next_day_cutoff:%H:%M}截止，"
                         f"当日号源{policy.same_day_open_time:%H:%M}开放")
    hold_until = now + timedelta(minutes=policy.hold_minutes) if req.hold else None
    return Pending(index, req, schedule, master, policy, CHANNEL_POOLS[req.channel],
                    hold_until)


def check_channel(principal: Principal, channel: Channel, hospital_id: int,
                  hospitals: Mapping[int, Any]) -> None:
    """May this principal book a session of ``hospital_id`` through this channel (BK-1,
    BK-8)? ``hospitals`` holds that hospital and the principal's (kind, alliance)."""
    allowed = ROLE_CHANNELS.get(principal.role.value, frozenset())
    if channel not in allowed:
        raise ChannelNotAllowed(detail={"role": principal.role.value, "channel": channel.value})
    if principal.role in (Role.patient, Role.proxy):
        return
    if channel is Channel.referral:
        # BK-4/RF-1: a primary-care clinic refers into a hospital of its own alliance.
        source = hospitals.get(principal.hospital_id) if principal.hospital_id else None
        target = hospitals[hospital_id]
        if (source is None or source.kind != "primary_care" or source.alliance_id is None
                or source.alliance_id != target.alliance_id):
            raise ChannelNotAllowed("只有同一医联体的基层医疗机构可以转诊预约")
        return
    if principal.hospital_id != hospital_id:
        raise ChannelNotAllowed("只能预约本院的号源", detail={"channel": channel.value})


def _refuse_restricted(db: Session, ctx: _Context, pending: list[Pending],
                       out: list[Outcome | None], now: datetime) -> None:
    """BK-6: a no-show restriction stops the online channels (never the window)."""
    online = [p for p in pending if p.request.channel in ONLINE_CHANNELS]
    if not online:
        return
    histories = penalties.penalty_histories(db, {p.patient_id for p in online})
    for p in online:
        hospital_id = p.schedule.hospital_id
        rule = ctx.policies[hospital_id][1]
        restriction = penalties.restriction_in(
            db, ctx.region_hospitals, histories.get(p.patient_id, []),
            hospital_id=hospital_id, rule=rule, now=now)
        if restriction is not None:
            out[p.index] = PatientRestricted(
                restriction.reason, detail={"until": restriction.until.isoformat(),
                                            "count": restriction.count,
                                            "rule": restriction.rule})


# --- locks, limits, claims -----------------------------------------------------------------


def _book_round(db: Session, pending: list[Pending], out: list[Outcome | None],
                now: datetime) -> None:
    """Limits, claims and inserts for requests of distinct patients."""
    lock_patients(db, sorted({p.patient_id for p in pending}))
    pending = _within_limits(db, pending, out, now)
    if pending:
        _record(db, _claim_and_insert(db, pending, out, now))


def lock_patients(db: Session, patient_ids: list[int]) -> None:
    """Take these patients' booking locks until the transaction ends (PostgreSQL; SQLite's
    write lock already serialises writers): whoever counts a patient's appointments against
    the limits and then books holds it, so two bookings cannot both count the same total.
    Taken in ascending order, as every caller must."""
    if patient_ids and db.get_bind().dialect.name == "postgresql":
        db.connection().execute(_LOCK_PATIENTS, {"ns": _PATIENT_LOCK, "ids": patient_ids})


def _within_limits(db: Session, pending: list[Pending], out: list[Outcome | None],
                   now: datetime) -> list[Pending]:
    """One active appointment per patient per schedule and per department per day; at most
    ``max_active_appointments`` in all (BK-8)."""
    active = active_appointments(db, {p.patient_id for p in pending}, now)
    kept = []
    for p in pending:
        refusal = limit_refusal(active[p.patient_id], p.schedule,
                                p.policy.max_active_appointments)
        if refusal is None:
            kept.append(p)
        else:
            out[p.index] = refusal
    return kept


def active_appointments(db: Session, patient_ids: set[int],
                        now: datetime) -> defaultdict[int, list[Any]]:
    """Each patient's appointments that count against the limits (schedule, department,
    day), read at once; run-out holds no longer count and are ended on the way."""
    conn = db.connection()
    rows = conn.execute(_reads(conn.dialect.name).limits, {
        "patients": sorted(patient_ids), "since": now - timedelta(hours=12)}).all()
    lapsed = {r.patient_id for r in rows if r.status == "held"
              and r.hold_expires_at is not None and r.hold_expires_at <= now}
    if lapsed:
        claims.expire_holds(db, now, patient_ids=lapsed)
    active: defaultdict[int, list[Any]] = defaultdict(list)
    for r in rows:
        if not (r.status == "held" and r.hold_expires_at is not None
                and r.hold_expires_at <= now):
            active[r.patient_id].append(r)
    return active


def limit_refusal(mine: Sequence[Any], schedule: Any, limit: int) -> LimitReached | None:
    """BK-8: why a patient holding ``mine`` may not book ``schedule`` too, if they may not."""
    if any(r.schedule_id == schedule.id for r in mine):
        return LimitReached("您已预约过该出诊", detail={"limit": "per_schedule"})
    if any(r.department_id == schedule.department_id and r.day == schedule.day for r in mine):
        return LimitReached("同一科室同一天只能预约一次", detail={"limit": "per_department_day"})
    if len(mine) >= limit:
        return LimitReached(f"有效预约最多{limit}个", detail={"limit": "max_active", "max": limit})
    return None


def _claim_and_insert(db: Session, pending: list[Pending], out: list[Outcome | None],
                      now: datetime) -> list[tuple[Pending, Booked]]:
    claims.claim(db, pending, now)
    claimed = [p for p in pending if p.slot is not None]
    if len(claimed) < len(pending):
        for index, refusal in claims.refusals(
                db, [p for p in pending if p.slot is None], now).items():
            out[index] = refusal
    if not claimed:
        return []
    rows = [{
        "slot_id": p.slot.id, "schedule_id": p.schedule.id, "patient_id": p.patient_id,
        "hospital_id": p.schedule.hospital_id, "department_id": p.schedule.department_id,
        "day": p.schedule.day, "start_at": p.slot.start_at, "pool": claims.pool_now(p.slot, now),
        "channel": p.request.channel.value, "status": "held" if p.request.hold else "booked",
        "hold_expires_at": p.hold_until, "booked_by": _who(p.request.principal),
        "booked_at": None if p.request.hold else now, "created_at": now,
        "cancel_reason": "",
    } for p in claimed if p.slot is not None]
    # A unique index may still refuse one (a writer that skipped the patient lock): that
    # one alone is refused. Its slot goes back unless an active appointment already holds
    # it (then the slot was never free: it stays taken).
    ids: dict[int, int] = {r.slot_id: r.id for r in insert_rows(
        db.connection(), _APPOINTMENT, rows, returning=("slot_id", "id"), skip_conflicts=True)}
    refused = {row["slot_id"] for row in rows} - set(ids)
    held = set(db.connection().execute(select(_APPOINTMENT.c.slot_id).where(
        among(db, _APPOINTMENT.c.slot_id, refused),
        _APPOINTMENT.c.status.in_(_ACTIVE))).scalars()) if refused else set()
    if refused - held:
        db.connection().execute(update(_SLOT).where(among(db, _SLOT.c.id, refused - held))
                                .values(status="free", held_until=None))
    booked = []
    for p, row in zip(claimed, rows, strict=True):
        if row["slot_id"] in held:
            out[p.index] = SlotTaken(detail={"slot_id": row["slot_id"]})
            continue
        if row["slot_id"] in refused:
            out[p.index] = LimitReached("已有同科室同日或同一出诊的有效预约")
            continue
        b = Booked(id=ids[row["slot_id"]], slot_id=row["slot_id"],
                   schedule_id=row["schedule_id"], patient_id=row["patient_id"],
                   hospital_id=row["hospital_id"], department_id=row["department_id"],
                   day=row["day"], start_at=row["start_at"], pool=row["pool"],
                   channel=row["channel"], status=row["status"],
                   hold_expires_at=row["hold_expires_at"], booked_at=row["booked_at"])
        out[p.index] = b
        booked.append((p, b))
    return booked


def _who(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.token_id or '-'}:{principal.label}"[:100]


def _record(db: Session, booked: list[tuple[Pending, Booked]]) -> None:
    """One audit row per booking and the domain events for the outbox (after the inserts)."""
    if not booked:
        return
    audit.record_many(db, [audit.Entry(p.request.principal, "appointment.book", b.patient_id)
                           for p, b in booked])
    for _p, b in booked:
        events.publish(db, AppointmentHeld(appointment_id=b.id, patient_id=b.patient_id)
                       if b.status == "held" else AppointmentBooked.of(b))
