"""Schedules and their slots: policy, creation, generation from templates, availability."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import (
    String,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.elements import ColumnElement

from onetrip.config import get_settings
from onetrip.db import among, among_bound, read_built
from onetrip.identity import audit
from onetrip.identity.models import AuditEvent
from onetrip.identity.service import Principal
from onetrip.org import calendar as org_calendar
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.org.rules import WEEKDAY_LABELS, DayStatus
from onetrip.scheduling.errors import PolicyRejected, ScheduleNotFound
from onetrip.scheduling.models import (
    BookingPolicy,
    Schedule,
    ScheduleTemplate,
    Slot,
    WaitlistEntry,
)
from onetrip.scheduling.rules import (
    ACTIVE_STATUSES,
    CHANNEL_POOLS,
    BookingWindow,
    Channel,
    PenaltyRule,
    PolicyInvalid,
    Pool,
    PoolPolicy,
    PoolTimer,
    SessionOfDay,
    allocate_pools,
    at_local,
    booking_paused,
    booking_window,
    pool_timer,
)
from onetrip.scheduling.scope import managed_departments

SESSION_STARTS = {SessionOfDay.am: time(8, 0), SessionOfDay.pm: time(13, 30),
                  SessionOfDay.evening: time(18, 0)}


def _errors_text(exc: ValidationError | PolicyInvalid) -> str:
    if isinstance(exc, PolicyInvalid):
        return str(exc)
    messages = []
    for err in exc.errors():
        ctx_error = (err.get("ctx") or {}).get("error")
        field = ".".join(map(str, err["loc"]))
        messages.append(str(ctx_error) if ctx_error else f"{field}：取值无效")
    return "；".join(messages)


def record_change(db: Session, by: Principal | None, action: str,
                  **detail: object) -> AuditEvent | None:
    """Every change to schedules, templates and policy leaves an audit row (who, what)."""
    if by is None:
        return None
    return audit.record(db, by, action=action, patient_id=None, detail=dict(detail))


def policy_for(db: Session, hospital_id: int) -> tuple[PoolPolicy, PenaltyRule]:
    """A hospital's pool policy and penalty rule (the defaults where none is stored)."""
    return policies_for(db, {hospital_id})[hospital_id]


_POLICIES = "onetrip.scheduling.policies"  # session info: the policies this transaction read


def policies_for(db: Session, hospital_ids: set[int],
                 ) -> dict[int, tuple[PoolPolicy, PenaltyRule]]:
    """``policy_for`` for several hospitals with one read (a batch of bookings). Each is
    read once a transaction: the engine and the messages of a batch both need them."""
    known: dict[int, tuple[PoolPolicy, PenaltyRule]] = db.info.setdefault(_POLICIES, {})
    missing = hospital_ids - known.keys()
    if missing:
        stored = {hid: (pools, penalty) for hid, pools, penalty in read_built(
            db, _policies_statement, {"ids": list(missing)})}
        known.update({hid: _validated(*(json.dumps(part, sort_keys=True)
                                        for part in stored[hid]))
                      if hid in stored else _validated("{}", "{}") for hid in missing})
    return {hid: known[hid] for hid in hospital_ids}


@lru_cache(maxsize=4)
def _policies_statement(dialect: str) -> Any:
    t = cast(Table, BookingPolicy.__table__).c
    return select(t.hospital_id, t.pools, t.penalty).where(
        among_bound(dialect, t.hospital_id, "ids"))


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_policies(db: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        db.info.pop(_POLICIES, None)


@lru_cache(maxsize=256)
def _validated(pools: str, penalty: str) -> tuple[PoolPolicy, PenaltyRule]:
    # Validation runs once per stored version (the models are frozen), not once a booking.
    return (PoolPolicy.model_validate_json(pools), PenaltyRule.model_validate_json(penalty))


_generation = 0


def policy_generation() -> int:
    """Changes whenever this process stores a policy (what caches of policies key on)."""
    return _generation


def set_policy(db: Session, *, hospital: Hospital, pools: dict[str, object],
               penalty: dict[str, object] | None = None,
               by: Principal | None = None) -> BookingPolicy:
    """Store a validated policy; one below the policy floors is refused (BK-2, BK-4)."""
    try:
        pool_policy = PoolPolicy.model_validate(pools)
        rule = PenaltyRule.model_validate(penalty or {})
    except (ValidationError, PolicyInvalid) as exc:
        raise PolicyRejected(_errors_text(exc)) from exc
    db.info.pop(_POLICIES, None)
    row = db.get(BookingPolicy, hospital.id) or BookingPolicy(hospital_id=hospital.id)
    row.pools = pool_policy.model_dump(mode="json")
    row.penalty = rule.model_dump(mode="json")
    row.updated_by = (by.actor if by else "system")[:100]
    db.add(row)
    db.flush()
    global _generation
    _generation += 1
    record_change(db, by, "booking_policy.set", hospital=hospital.code, pools=row.pools,
                  penalty=row.penalty)
    return row


@dataclass(frozen=True)
class SessionSpec:
    """What one session needs besides its hospital: the template or the admin's form."""

    department_id: int
    practitioner_id: int | None
    day: date
    session: SessionOfDay
    start_time: time
    slot_minutes: int
    capacity: int
    service_level: str
    location_id: int | None = None
    template_id: int | None = None


def create_schedules(db: Session, *, hospital: Hospital, specs: list[SessionSpec],
                     now: datetime) -> list[Schedule]:
    """Sessions with their minute-precise slots (BK-3) split into pools with timers."""
    pool_policy, _rule = policy_for(db, hospital.id)
    tz = get_settings().tz
    fees = org_service.service_level_fees(db, hospital)
    schedules = []
    for spec in specs:
        start = at_local(spec.day, spec.start_time, tz)
        schedules.append(Schedule(
            hospital_id=hospital.id, department_id=spec.department_id,
            practitioner_id=spec.practitioner_id, location_id=spec.location_id,
            template_id=spec.template_id, day=spec.day, session=spec.session.value,
            start_at=start, end_at=start + timedelta(minutes=spec.slot_minutes * spec.capacity),
            slot_minutes=spec.slot_minutes, capacity=spec.capacity,
            service_level=spec.service_level,
            fee=fees[spec.service_level].fee if spec.service_level in fees else Decimal("0"),
            status="open"))
    db.add_all(schedules)
    db.flush()
    rows = []
    timers: dict[tuple[Pool, date], PoolTimer] = {}
    layouts: dict[int, list[Pool]] = {}
    for schedule, spec in zip(schedules, specs, strict=True):
        if spec.capacity not in layouts:
            layouts[spec.capacity] = allocate_pools(spec.capacity, pool_policy)
        for seq, pool in enumerate(layouts[spec.capacity]):
            if (pool, spec.day) not in timers:
                timers[(pool, spec.day)] = pool_timer(pool, spec.day, pool_policy, tz, now)
            timer = timers[(pool, spec.day)]
            rows.append({
                "schedule_id": schedule.id, "seq": seq,
                "start_at": schedule.start_at + timedelta(minutes=spec.slot_minutes * seq),
                "pool": pool.value, "release_at": timer.release_at,
                "return_at": timer.return_at,
                "return_pool": timer.return_pool.value if timer.return_pool else None,
                "status": "free",
            })
    if rows:
        # Core executemany: one statement for every slot, no ORM bookkeeping per row.
        db.connection().execute(insert(cast(Table, Slot.__table__)), rows)
    return schedules


def create_schedule(
    db: Session, *, hospital: Hospital, department: Department, day: date,
    session: SessionOfDay, practitioner: Practitioner | None = None,
    start_time: time | None = None, slot_minutes: int | None = None, capacity: int = 20,
    service_level: str | None = None, location_id: int | None = None, now: datetime,
) -> Schedule:
    """One session, e.g. an extra clinic an admin adds by hand."""
    minutes = slot_minutes or policy_for(db, hospital.id)[0].slot_minutes
    level = service_level or (practitioner.service_level if practitioner else "general")
    spec = SessionSpec(department.id, practitioner.id if practitioner else None, day, session,
                       start_time or SESSION_STARTS[session], minutes, capacity, level,
                       location_id)
    return create_schedules(db, hospital=hospital, specs=[spec], now=now)[0]


@dataclass(frozen=True)
class GenerationReport:
    created: int
    existing: int
    skipped_days: dict[date, str]


def generate_from_templates(db: Session, *, hospital: Hospital, start: date, end: date,
                            now: datetime, by: Principal | None = None) -> GenerationReport:
    """Create the schedules of the weekly templates for each clinic day in [start, end].

    Days the calendar marks closed or unknown are skipped and reported with the reason;
    schedules that already exist are left alone, so running it twice changes nothing. A
    department admin generates its departments' sessions only.
    """
    departments = managed_departments(db, by)
    templates = [t for t in db.scalars(select(ScheduleTemplate).where(
        ScheduleTemplate.hospital_id == hospital.id, ScheduleTemplate.active))
        if departments is None or t.department_id in departments]
    existing_keys: set[tuple[int | None, date, str, int]] = {
        (p, d, s, dept) for p, d, s, dept in db.execute(
            select(Schedule.practitioner_id, Schedule.day, Schedule.session,
                   Schedule.department_id)
            .where(Schedule.hospital_id == hospital.id, Schedule.day >= start,
                   Schedule.day <= end))}
    skipped: dict[date, str] = {}
    specs: list[SessionSpec] = []
    existing = 0
    for clinic_day in org_calendar.clinic_days(db, hospital, start, end):
        if clinic_day.status is not DayStatus.clinic:
            skipped[clinic_day.day] = clinic_day.reason
            continue
        weekday = clinic_day.day.isoweekday()
        if clinic_day.source != "weekday" and not any(t.weekday == weekday for t in templates):
            # A day a ruling made a clinic day (a weekend worked in lieu of a holiday, 调休)
            # has no templates of its own weekday: said, so that its sessions are added.
            skipped[clinic_day.day] = (f"{clinic_day.reason}：没有{WEEKDAY_LABELS[weekday - 1]}"
                                       "的出诊模板，未生成出诊，请另行排班")
            continue
        for t in templates:
            if t.weekday != weekday:
                continue
            key = (t.practitioner_id, clinic_day.day, t.session, t.department_id)
            if key in existing_keys:
                existing += 1
                continue
            existing_keys.add(key)
            specs.append(SessionSpec(t.department_id, t.practitioner_id, clinic_day.day,
                                     SessionOfDay(t.session), t.start_time, t.slot_minutes,
                                     t.capacity, t.service_level, t.location_id, t.id))
    create_schedules(db, hospital=hospital, specs=specs, now=now)
    record_change(db, by, "schedule.generate", hospital=hospital.code, start=start.isoformat(),
                  end=end.isoformat(), created=len(specs),
                  departments=sorted(departments) if departments is not None else "all")
    return GenerationReport(len(specs), existing, skipped)


def access_schedule(db: Session, schedule_id: int) -> Schedule:
    """The schedule with this id; raises ScheduleNotFound."""
    schedule = db.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(detail={"schedule_id": schedule_id})
    return schedule


def reopens_at(policy: PoolPolicy, day: date, now: datetime) -> datetime | None:
    """When booking for ``day`` reopens, if ``now`` falls in the overnight pause before it
    (from the next-day cutoff to the same-day opening the engine refuses every booking of
    that day, so the pages offer none); None while it is open."""
    window = booking_window(day, policy, get_settings().tz)
    return window.same_day_opens_at if booking_paused(window, now) else None


def in_overnight_pause(db: Session, now: datetime,
                       hospital_ids: Iterable[int] | None = None) -> ColumnElement[bool]:
    """SQL over Schedule: the session's day is in its hospital's overnight pause at ``now``,
    when the engine refuses every booking of it (``reopens_at`` for many sessions at once).

    Each hospital's own policy is read (``policies_for``), for the hospitals given or else
    those with a session today or tomorrow; the answer is one condition, not a loop."""
    return _days_where(db, now, hospital_ids, lambda window: booking_paused(window, now))


def overnight_pause_turned(db: Session, since: datetime, now: datetime,
                           hospital_ids: Iterable[int] | None = None) -> ColumnElement[bool]:
    """SQL over Schedule: the overnight pause of the session's day began or ended between
    ``since`` and ``now``, so whether its slots can be booked changed with no row written."""
    return _days_where(db, now, hospital_ids, lambda window: (
        since <= window.advance_closes_at <= now or since <= window.same_day_opens_at <= now))


def _days_where(db: Session, now: datetime, hospital_ids: Iterable[int] | None,
                chosen: Callable[[BookingWindow], bool]) -> ColumnElement[bool]:
    tz = get_settings().tz
    today = now.astimezone(tz).date()
    # A day's pause runs from the evening before to the morning of the day: only today's
    # and tomorrow's can have begun by now and concern slots still to come.
    days = (today, today + timedelta(days=1))
    if hospital_ids is None:
        hospital_ids = db.scalars(select(Schedule.hospital_id).distinct()
                                  .where(Schedule.day.in_(days))).all()
    # Hospitals on the same calendar (most keep the defaults) share one term.
    groups: dict[tuple[date, ...], list[int]] = {}
    for hospital_id, (policy, _rule) in sorted(policies_for(db, set(hospital_ids)).items()):
        hit = tuple(d for d in days if chosen(booking_window(d, policy, tz)))
        if hit:
            groups.setdefault(hit, []).append(hospital_id)
    if not groups:
        return false()
    return or_(*(and_(Schedule.day.in_(hit), among(db, Schedule.hospital_id, ids))
                 for hit, ids in groups.items()))


def open_to(pools: frozenset[Pool], now: datetime | Any,
            cols: Any = None) -> ColumnElement[bool]:
    """SQL: the slot's pool at ``now`` is one of ``pools`` and released (BK-4 timers).

    ``cols`` is the slot table's column collection for Core statements (default: ORM);
    ``now`` may be a bound parameter of a statement built once. The pools are compared one
    by one, not with IN: an IN list is expanded into the text at every execution, which a
    statement built once for a batch's hot path would pay each time."""
    c = cols if cols is not None else Slot
    names = [constant(p.value) for p in sorted(pools)]
    returned = and_(c.return_at.is_not(None), c.return_at <= now)
    return or_(
        and_(returned, or_(*(c.return_pool == name for name in names))),
        and_(~returned, or_(*(c.pool == name for name in names)), c.release_at <= now),
    )


def constant(word: str) -> ColumnElement[str]:
    """A fixed word of ours (a pool, a status) written into a statement's text rather than
    bound: a statement built once then carries no value to process at every execution."""
    if not word.isidentifier() or not word.isascii():
        raise ValueError(f"not a plain word: {word!r}")
    return literal_column(f"'{word}'", String)


def status_among_active(column: Any, *statuses: str) -> ColumnElement[bool]:
    """An appointment's ``column`` (its status) is one of these active ``statuses``, written
    with the active statuses as the partial indexes of active appointments state them. Those
    indexes then answer the statement, however long the history, and also once it is
    prepared and planned for any value (a bound status would no longer match them)."""
    assert set(statuses) <= {s.value for s in ACTIVE_STATUSES}
    return and_(column.in_([constant(s.value) for s in ACTIVE_STATUSES]),
                column.in_([constant(s) for s in statuses]))


def free_held(db: Session, slot_ids: Iterable[int], *,
              ran_out_by: datetime | None = None) -> list[int]:
    """Free the slots among ``slot_ids`` still held (by a hold or an offer), or with
    ``ran_out_by`` only those whose time had run out by then; the ids freed (a slot taken
    meanwhile stays as it is)."""
    ids = list(slot_ids)
    if not ids:
        return []
    stmt = update(Slot).where(Slot.id.in_(ids), Slot.status == "held")
    if ran_out_by is not None:
        stmt = stmt.where(Slot.held_until <= ran_out_by)
    return list(db.execute(stmt.values(status="free", held_until=None).returning(Slot.id),
                           execution_options={"synchronize_session": False}).scalars())


def claimable(now: Any, cols: Any = None) -> ColumnElement[bool]:
    """SQL: free, or held by a hold whose time ran out (``cols`` as for ``open_to``).

    BK-6: a slot whose hold ran out in a session with patients waiting is theirs first: it
    is neither shown nor booked as free until the sweeper has offered it to them.
    """
    c = cols if cols is not None else Slot
    return or_(c.status == constant("free"), lapsed(now, c))


def lapsed(now: Any, c: Any) -> ColumnElement[bool]:
    """SQL: held by a hold whose time ran out, in a session nobody waits for."""
    waiting = exists().where(WaitlistEntry.schedule_id == c.schedule_id,
                             WaitlistEntry.status == constant("waiting"))
    return and_(c.status == constant("held"), c.held_until <= now, ~waiting)


def list_schedules(db: Session, *, hospital: Hospital, day: date,
                   department: Department | None = None) -> list[Schedule]:
    stmt = select(Schedule).where(Schedule.hospital_id == hospital.id, Schedule.day == day)
    if department is not None:
        ids = [department.id, *(c.id for c in department.children)]
        stmt = stmt.where(Schedule.department_id.in_(ids))
    return list(db.scalars(stmt.order_by(Schedule.start_at, Schedule.id)))


def availability(db: Session, schedule_ids: list[int], now: datetime,
                 ) -> dict[int, dict[str, int]]:
    """Free, released slots per schedule and per pool as they stand at ``now``."""
    if not schedule_ids:
        return {}
    returned = and_(Slot.return_at.is_not(None), Slot.return_at <= now)
    inner = (
        select(Slot.schedule_id.label("sid"),
               case((returned, Slot.return_pool), else_=Slot.pool).label("pool_now"))
        .where(Slot.schedule_id.in_(schedule_ids), claimable(now), Slot.start_at > now,
               or_(returned, Slot.release_at <= now))
        .subquery()
    )
    rows = db.execute(select(inner.c.sid, inner.c.pool_now, func.count())
                      .group_by(inner.c.sid, inner.c.pool_now))
    out: dict[int, dict[str, int]] = {sid: {} for sid in schedule_ids}
    for sid, pool, count in rows:
        out[sid][pool] = int(count)
    return out


def free_slots(db: Session, *, schedule: Schedule, channel: Channel, now: datetime,
               ) -> list[Slot]:
    """The slots a channel can book now, earliest first."""
    return list(db.scalars(
        select(Slot).where(Slot.schedule_id == schedule.id, claimable(now),
                           Slot.start_at > now, open_to(CHANNEL_POOLS[channel], now))
        .order_by(Slot.start_at, Slot.id)))
