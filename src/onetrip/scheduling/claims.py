"""Claiming slots: the conditional UPDATEs that take a slot only while it is free (or its
hold has run out), released and in a pool open to the channel (BK-3, BK-8).

Each statement is built once per shape, its values bound at execution, and claims the
slots of a whole batch: the named slots of the requests that name one, and each schedule's
earliest open slots for the others. On PostgreSQL slots are picked with ``FOR UPDATE SKIP
LOCKED``, so concurrent batches spread over a schedule and never wait for one another (two
batches waiting for each other's slots would deadlock); on SQLite, with one writer at a
time, nothing is locked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Integer,
    Table,
    any_,
    bindparam,
    case,
    func,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from onetrip.db import among
from onetrip.errors import OnetripError
from onetrip.scheduling import service
from onetrip.scheduling.errors import PoolClosed, ScheduleFull, SlotInPast, SlotTaken
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import Pool, PoolPolicy, PoolTimer, effective_pool

if TYPE_CHECKING:
    from onetrip.scheduling.engine import BookingRequest

_APPOINTMENT = cast(Table, Appointment.__table__)
_SLOT = cast(Table, Slot.__table__)


@dataclass
class Pending:
    """A request that passed the checks that need no lock, on its way to a slot."""

    index: int
    request: BookingRequest
    schedule: Any
    patient_id: int  # the master record (ID-3)
    policy: PoolPolicy
    pools: frozenset[Pool]
    hold_until: datetime | None
    slot: Any | None = None


def claim(db: Session, pending: list[Pending], now: datetime) -> None:
    """Give each request a slot where one can be had (``Pending.slot``): the named slots
    first, then each schedule's earliest, grouped by pool set and hold. A slot named by
    several requests goes to the first of them (the lowest draw, after an opening)."""
    named = sorted((p for p in pending if p.request.slot_id is not None),
                   key=lambda p: p.index)
    first: dict[int | None, Pending] = {}
    again: list[Pending] = []
    for p in named:
        if p.request.slot_id in first:
            again.append(p)
        else:
            first[p.request.slot_id] = p
    by_slot: dict[tuple[frozenset[Pool], datetime | None], list[Pending]] = defaultdict(list)
    for p in first.values():
        by_slot[(p.pools, p.hold_until)].append(p)
    for (pools, _until), group in by_slot.items():
        _claim_slots(db, group, pools, now)
    for p in again:  # a slot another request named first: it goes to them, if it could
        _claim_slots(db, [p], p.pools, now)
    by_pools: dict[tuple[frozenset[Pool], datetime | None], list[Pending]] = defaultdict(list)
    for p in pending:
        if p.request.slot_id is None:
            by_pools[(p.pools, p.hold_until)].append(p)
    for (pools, _until), group in by_pools.items():
        _claim_earliest(db, group, pools, now)


def expire_holds(db: Session, now: datetime, *, patient_ids: set[int] | None = None,
                 slot_ids: Sequence[int] | None = None) -> None:
    """Turn run-out holds into ``expired`` so they no longer count or block."""
    t = _APPOINTMENT.c
    stmt = update(_APPOINTMENT).where(t.status == "held", t.hold_expires_at <= now)
    if patient_ids is not None:
        stmt = stmt.where(among(db, t.patient_id, patient_ids))
    if slot_ids is not None:
        stmt = stmt.where(among(db, t.slot_id, slot_ids))
    db.connection().execute(stmt.values(status="expired"))


def pool_now(slot: Any, now: datetime) -> str:
    timer = PoolTimer(slot.release_at, slot.return_at,
                      Pool(slot.return_pool) if slot.return_pool else None)
    pool = Pool(slot.pool)
    return (effective_pool(pool, timer, now) or pool).value


_RETURNING = (_SLOT.c.id, _SLOT.c.schedule_id, _SLOT.c.start_at, _SLOT.c.pool,
              _SLOT.c.release_at, _SLOT.c.return_at, _SLOT.c.return_pool)


def _claim_params(group: list[Pending], now: datetime) -> dict[str, Any]:
    hold_until = group[0].hold_until
    return {"now": now, "held_until": hold_until, "claimed": "held" if hold_until else "booked"}


@lru_cache(maxsize=512)
def _claim_statement(dialect: str, pools: frozenset[Pool], *, named: bool, lapsed: bool,
                     schedules: int = 0) -> Any:
    """The claim UPDATE, built once per shape (its values are bound parameters): the named
    slots, or each schedule's earliest ones (on SQLite, for how many schedules), open to
    ``pools``; free slots, or those whose hold ran out (``service.lapsed``: not where
    patients wait for the session)."""
    t = _SLOT.c
    now = bindparam("now", type_=_SLOT.c.start_at.type)
    state = service.lapsed(now, t) if lapsed else t.status == service.constant("free")
    conditions = [state, t.start_at > now,
                  service.open_to(pools, now, t)]
    postgres = dialect == "postgresql"
    if named:
        target = (t.id == _pick_named(t, conditions).c.id if postgres
                  else t.id.in_(bindparam("ids", expanding=True)))
    else:
        pick = _pick_locked(t, conditions) if postgres else _pick_each(t, conditions, schedules)
        target = t.id == pick.c.id
    return (update(_SLOT).where(target, *conditions)
            .values(status=bindparam("claimed"), held_until=bindparam("held_until"))
            .returning(*_RETURNING))


def _claim_slots(db: Session, group: list[Pending], pools: frozenset[Pool],
                 now: datetime) -> None:
    """Claim the named slots: free ones first, then those whose hold ran out."""
    dialect = db.get_bind().dialect.name
    wanted = {p.request.slot_id for p in group if p.request.slot_id is not None}
    for lapsed in (False, True):
        rows = db.connection().execute(
            _claim_statement(dialect, pools, named=True, lapsed=lapsed),
            {**_claim_params(group, now), "ids": sorted(wanted)}).all()
        if lapsed and rows:
            expire_holds(db, now, slot_ids=[r.id for r in rows])
        got = {r.id: r for r in rows}
        for p in group:
            if p.slot is None and p.request.slot_id in got:
                p.slot = got.pop(cast(int, p.request.slot_id))
        wanted = {p.request.slot_id for p in group
                  if p.slot is None and p.request.slot_id is not None}
        if not wanted:
            return


def _claim_earliest(db: Session, group: list[Pending], pools: frozenset[Pool],
                    now: datetime) -> None:
    """Claim each schedule's earliest free slots open to the pools, one per request, for
    every schedule of the group in one statement.

    Free slots are tried first and slots whose hold ran out second, each with a condition
    the (schedule, status, start) index answers. On PostgreSQL the pick skips slots that
    other bookings have locked and never waits for them: a batch that waited for another's
    slots while holding its own could deadlock with it. A slot another booking holds is
    taken for this batch; if that booking rolls back, the slot is free for the next.
    """
    dialect = db.get_bind().dialect.name
    waiting: dict[int, list[Pending]] = defaultdict(list)
    for p in group:
        waiting[p.schedule.id].append(p)
    for lapsed in (False, True):
        need = {sid: len(waiting[sid]) for sid in sorted(waiting) if waiting[sid]}
        if not need:
            return
        params = {**_claim_params(group, now), "want_sids": list(need),
                  "want_ns": list(need.values())}
        shape = 0 if dialect == "postgresql" else _shape(len(need))
        for i, (sid, n) in enumerate(need.items()):
            params |= {f"sid_{i}": sid, f"n_{i}": n}
        for i in range(len(need), shape):  # the shape's spare places pick nothing
            params |= {f"sid_{i}": None, f"n_{i}": 0}
        rows = db.connection().execute(_claim_statement(
            dialect, pools, named=False, lapsed=lapsed, schedules=shape), params).all()
        if lapsed and rows:
            expire_holds(db, now, slot_ids=[r.id for r in rows])
        for row in sorted(rows, key=lambda r: (r.start_at, r.id)):
            waiting[row.schedule_id].pop(0).slot = row


def _shape(schedules: int) -> int:
    """SQLite: how many schedules the claim statement is built for, a power of two at least
    ``schedules``. Compiling the statement for 32 schedules takes about 50 ms, under the
    write lock; one shape for every count would compile 32 of them for batches of up to 32
    sessions, six shapes cover them. A spare place costs one index probe."""
    return 1 << max(0, schedules - 1).bit_length()


def _pick_named(t: Any, conditions: list[Any]) -> Any:
    """PostgreSQL: the named slots (``ids``, an array) that no other booking holds, locked,
    as a CTE: a slot another batch holds is not waited for."""
    return (select(t.id).where(t.id == any_(bindparam("ids", type_=ARRAY(Integer))),
                               *conditions)
            .with_for_update(skip_locked=True).cte("picked"))


def _pick_locked(t: Any, conditions: list[Any]) -> Any:
    """PostgreSQL: each schedule's earliest ``want_ns`` slots that no other booking holds,
    locked, as a CTE. A CTE is picked once; ``id IN (subquery)`` may be rescanned, and with
    SKIP LOCKED pick other slots. The wanted counts travel as two arrays."""
    want = select(
        func.unnest(bindparam("want_sids", type_=ARRAY(Integer))).label("sid"),
        func.unnest(bindparam("want_ns", type_=ARRAY(Integer))).label("n")).subquery("want")
    per_schedule = (select(t.id).where(t.schedule_id == want.c.sid, *conditions)
                    .order_by(t.start_at).limit(want.c.n)
                    .with_for_update(skip_locked=True).lateral("per_schedule"))
    return select(per_schedule.c.id).select_from(want.join(per_schedule, true())).cte("picked")


def _pick_each(t: Any, conditions: list[Any], schedules: int) -> Any:
    """SQLite (one writer at a time, nothing to lock): the earliest ``n_i`` slots of each
    schedule ``sid_i``, one LIMIT query per schedule the index answers, as a CTE."""
    picks = [select(t.id).where(t.schedule_id == bindparam(f"sid_{i}"), *conditions)
             .order_by(t.start_at).limit(bindparam(f"n_{i}")).subquery() for i in range(schedules)]
    return union_all(*(select(pick.c.id) for pick in picks)).cte("picked")


def refusals(db: Session, unclaimed: list[Pending], now: datetime,
             ) -> dict[int, OnetripError]:
    """The refusal of each request that got no slot, by request index: one read for the
    named slots and one per pool set for the schedules."""
    out: dict[int, OnetripError] = {}
    t = _SLOT.c
    named = {p.request.slot_id for p in unclaimed if p.request.slot_id is not None}
    slots = {r.id: r for r in db.connection().execute(
        select(t.id, t.start_at, t.status, t.pool).where(among(db, t.id, named)))} if named else {}
    by_pools: dict[frozenset[Pool], set[int]] = defaultdict(set)
    for p in unclaimed:
        if p.request.slot_id is None:
            by_pools[p.pools].add(p.schedule.id)
    free = {}  # (pool set, schedule) → (free slots, free slots open to the pools)
    for pools, schedule_ids in by_pools.items():
        mine = func.sum(case((service.open_to(pools, now, t), 1), else_=0))
        for sid, n, n_mine in db.connection().execute(
                select(t.schedule_id, func.count(), mine)
                .where(among(db, t.schedule_id, schedule_ids), service.claimable(now, t),
                       t.start_at > now).group_by(t.schedule_id)):
            free[(pools, sid)] = (n, n_mine)
    # A session none of whose slots is still to come is over, not full (read only for the
    # sessions with nothing free).
    empty = {p.schedule.id for p in unclaimed if p.request.slot_id is None
             and (p.pools, p.schedule.id) not in free}
    ahead = set(db.connection().execute(
        select(t.schedule_id).where(among(db, t.schedule_id, empty), t.start_at > now)
        .distinct()).scalars()) if empty else set()
    for p in unclaimed:
        slot_id = p.request.slot_id
        if slot_id is not None:
            slot = slots[slot_id]
            if slot.start_at <= now:
                out[p.index] = SlotInPast(detail={"slot_id": slot_id})
            elif slot.status in ("booked", "held", "blocked"):
                out[p.index] = SlotTaken(detail={"slot_id": slot_id})
            else:
                out[p.index] = PoolClosed(detail={"slot_id": slot_id, "pool": slot.pool})
            continue
        n, n_mine = free.get((p.pools, p.schedule.id), (0, 0))
        if not n and p.schedule.id not in ahead:
            out[p.index] = SlotInPast("该出诊已结束", detail={"schedule_id": p.schedule.id})
        elif n and not n_mine:
            out[p.index] = PoolClosed("该出诊剩余号源暂未向此渠道开放",
                                      detail={"schedule_id": p.schedule.id})
        else:
            # Free slots this channel could take but did not get are held by bookings in
            # flight (or by this batch's earlier requests).
            out[p.index] = ScheduleFull(detail={"schedule_id": p.schedule.id})
    return out
