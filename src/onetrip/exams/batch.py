"""Batch mode (EX-2): a day's pending orders re-planned together over shared capacity.

First the sequential plan: each patient in turn, those with the most and hardest exams
first, solved exactly given what the ones before took. Then a large-neighbourhood search
over it. A patient who would make fewer trips alone (a second visit, a follow-up without
its results) is re-planned in one CP-SAT model together with the few patients holding the
slots of that patient's best day, every slot's capacity shared between them. Each of them
keeps the current plan, takes a plan on another day, or a new plan on that day. Keeping
every current plan is a solution the model starts from, and a neighbourhood is replaced
only by a cheaper one, so the batch is never worse than the sequential plan.

The cost of a patient's plan, lowest first: orders left unplanned, trips (a follow-up
without its results counts as one), how many days later than the first the trips are,
minutes in hospital, how late the fasting exams end.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ortools.sat.python import cp_model

from onetrip.exams import model, planner
from onetrip.exams.model import W_DAY, W_FAST, W_MINUTE, W_TRIP
from onetrip.exams.rules import (
    Catalogue,
    FreeSlot,
    Itinerary,
    PatientRequest,
    Site,
    clear_followup,
    usable,
)

W_UNPLANNED = 10 * W_TRIP
#: Patients re-planned together: the one who could do better and those in the way.
NEIGHBOURHOOD = 8
#: Passes over the patients who could do better.
ROUNDS = 2
#: Deterministic-time limit of one joint model (see model.new_solver).
JOINT_WORK = 0.05


def visits_cost(req: PatientRequest, it: Itinerary, tz: ZoneInfo) -> int:
    """The part of a plan's cost that counts trips: unplanned orders, trips, a follow-up
    without its results (in units of a trip)."""
    missed = int(req.followup is not None and it.followup_at is None)
    return W_UNPLANNED // W_TRIP * len(it.unplanned) + len(it.days(tz)) + missed


def plan_cost(cat: Catalogue, req: PatientRequest, it: Itinerary, tz: ZoneInfo,
              first: date) -> int:
    """The batch's cost of one patient's plan (see the module's description)."""
    days = it.days(tz)
    fasting = 0
    for v in it.visits:
        if cat.exams[v.exam_code].fasting:
            local = v.end.astimezone(tz)
            fasting += local.hour * 60 + local.minute
    return (W_TRIP * visits_cost(req, it, tz) + W_DAY * sum((d - first).days for d in days)
            + W_MINUTE * it.hospital_minutes(tz) + W_FAST * fasting)


@dataclass
class Batch:
    """A day's patients, their plans and the places those take."""

    cat: Catalogue
    site: Site
    tz: ZoneInfo
    reqs: dict[int, PatientRequest]
    slots: dict[int, FreeSlot]
    first: date  # the first day: later days cost W_DAY each
    plans: dict[int, Itinerary] = field(default_factory=dict)
    used: Counter[int] = field(default_factory=Counter)
    _relevant: dict[int, list[FreeSlot]] = field(default_factory=dict)

    def relevant(self, pid: int) -> list[FreeSlot]:
        """The slots of rooms that can do one of the patient's exams."""
        got = self._relevant.get(pid)
        if got is None:
            codes = {o.exam_code for o in self.reqs[pid].orders}
            got = self._relevant[pid] = [s for s in self.slots.values()
                                         if not codes.isdisjoint(s.exam_codes)]
        return got

    def cost(self, pid: int, it: Itinerary | None = None) -> int:
        return plan_cost(self.cat, self.reqs[pid], self.plans[pid] if it is None else it,
                         self.tz, self.first)

    def replace(self, new: dict[int, Itinerary]) -> None:
        for pid, it in new.items():
            if pid in self.plans:
                self.used.subtract(v.slot_id for v in self.plans[pid].visits)
            self.used.update(v.slot_id for v in it.visits)
            self.plans[pid] = it


def plan_batch(cat: Catalogue, site: Site, tz: ZoneInfo, requests: Sequence[PatientRequest],
               slots: Sequence[FreeSlot], *, work_limit: float = 1.0,
               seconds: float = 25.0) -> list[Itinerary]:
    """Plan a day's patients together: in turn, then re-planned jointly where that spares
    a patient a trip. Deterministic (every solve has a deterministic limit); ``seconds`` of
    wall clock only guard a busy machine, the best plan found by then is returned."""
    if not requests:
        return []
    deadline = time.monotonic() + seconds
    requests = [clear_followup(r, site) for r in requests]
    # Later days cost more from the first day with a free slot (patients are often told
    # the evening before: that evening is no day of theirs).
    told = min(r.not_before for r in requests)
    first = min((s.start for s in slots if s.start >= told), default=told)
    batch = Batch(cat, site, tz, {r.patient_id: r for r in requests},
                  {s.slot_id: s for s in slots}, first.astimezone(tz).date())
    in_turn(batch, work_limit=work_limit)
    improve(batch, work_limit=work_limit, deadline=deadline)
    return [batch.plans[r.patient_id] for r in requests]


def in_turn(batch: Batch, *, work_limit: float) -> None:
    """The sequential plan: each patient over what the ones before left, the most and
    hardest exams first."""
    for req in sorted(batch.reqs.values(), key=lambda r: planner.difficulty(batch.cat, r)):
        pid = req.patient_id
        batch.replace({pid: planner.plan_patient(batch.cat, batch.site, batch.tz, req,
                                                 batch.relevant(pid), taken=batch.used.copy(),
                                                 work_limit=work_limit)})


def improve(batch: Batch, *, work_limit: float, deadline: float) -> None:
    """The large-neighbourhood search: each patient who would make fewer trips alone is
    re-planned with those in the way, in ``ROUNDS`` passes (each pass takes the next ones
    in the way)."""
    # What each patient could have alone; one trip with everything kept is the best.
    alone = {pid: planner.plan_patient(batch.cat, batch.site, batch.tz, req,
                                       batch.relevant(pid), work_limit=work_limit)
             for pid, req in batch.reqs.items()
             if visits_cost(req, batch.plans[pid], batch.tz) > 1}
    for turn in range(ROUNDS):
        for pid in sorted(alone, key=lambda p: (batch.cost(p, alone[p]) - batch.cost(p), p)):
            if time.monotonic() > deadline:
                return
            req = batch.reqs[pid]
            if not alone[pid].visits or visits_cost(req, batch.plans[pid], batch.tz) <= (
                    visits_cost(req, alone[pid], batch.tz)):
                continue
            day = alone[pid].days(batch.tz)[0]
            group = [pid, *in_the_way(batch, alone[pid], day, pid, turn)]
            new = replan_together(batch, group, day, work_limit=work_limit)
            if new is not None and sum(batch.cost(p, it) for p, it in new.items()) < sum(
                    batch.cost(p) for p in new):
                batch.replace(new)


def in_the_way(batch: Batch, wanted: Itinerary, day: date, pid: int, turn: int) -> list[int]:
    """Patients holding places on ``day`` near those ``wanted`` would take where those are
    full, on rooms that could do the same exams: first those without a follow-up that day
    (they can move to another day without a second visit), then the nearest in time.
    ``turn`` counts earlier tries for this patient: each try takes the next ones."""
    found: dict[int, tuple[int, int]] = {}
    near = timedelta(minutes=60)
    full = [w for w in wanted.visits if batch.used[w.slot_id] >= batch.slots[w.slot_id].free]
    for other, it in batch.plans.items():
        if other == pid:
            continue
        f = batch.reqs[other].followup
        has_followup = int(f is not None and it.followup_at is not None)
        for v in it.visits:
            if v.start.astimezone(batch.tz).date() != day:
                continue
            codes = batch.slots[v.slot_id].exam_codes
            for w in full:
                if w.exam_code in codes and abs(v.start - w.start) <= near:
                    distance = int(abs(v.start - w.start).total_seconds() // 60)
                    found[other] = min(found.get(other, (2, 10**6)), (has_followup, distance))
    ranked = sorted(found, key=lambda o: (*found[o], o))
    size = NEIGHBOURHOOD - 1
    start = (turn * size) % max(1, len(ranked))
    return (ranked[start:] + ranked[:start])[:size]


@dataclass
class _Option:
    """One way a patient of the neighbourhood may end up: a fixed plan or the day's model."""

    chosen: cp_model.IntVar
    plan: Itinerary | None = None
    day: model.DayPlan | None = None
    places: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)


def replan_together(batch: Batch, group: Sequence[int], day: date, *, work_limit: float
                    ) -> dict[int, Itinerary] | None:
    """The cheapest plans of ``group`` together (None: keep theirs): each keeps its plan,
    takes its best plan off ``day``, or a new plan on ``day``, the slots shared."""
    tz = batch.tz
    mine = Counter(v.slot_id for p in group for v in batch.plans[p].visits)
    room = {k: s.free - (batch.used[k] - mine[k]) for k, s in batch.slots.items()}
    m = model.Model()
    options: dict[int, list[_Option]] = {}
    cost_terms: list[model.Expr] = []
    for p in group:
        req = batch.reqs[p]
        own = [_Option(m.new_bool_var("keep"), plan=batch.plans[p])]
        on_day = [s for s in batch.relevant(p) if s.start.astimezone(tz).date() == day]
        # Another day, for one whose follow-up is not that day (else it would be missed).
        f = req.followup
        if len(on_day) < len(batch.relevant(p)) and any(
                v.start.astimezone(tz).date() == day for v in batch.plans[p].visits) and (
                f is None or f.opens.astimezone(tz).date() != day):
            # As if the whole group moved out: where that clashes with one who stays,
            # the shared capacity below rules this option out.
            taken = batch.used - mine
            off_day = [s for s in batch.relevant(p) if s.start.astimezone(tz).date() != day]
            other = planner.plan_patient(batch.cat, batch.site, tz, req, off_day, taken=taken,
                                         work_limit=work_limit)
            own.append(_Option(m.new_bool_var("elsewhere"), plan=other))
        fresh = _day_option(m, batch, req, day,
                            [s for s in on_day if room[s.slot_id] > 0], work_limit)
        if fresh is not None:
            own.append(fresh)
        m.add_exactly_one(o.chosen for o in own)
        for o in own:
            if o.plan is not None:
                cost_terms.append(batch.cost(p, o.plan) * o.chosen)
            else:
                cost_terms.append(_day_cost(m, batch, req, day, o))
        options[p] = own
    _share_capacity(m, options, room)
    for own in options.values():
        m.add_hint(own[0].chosen, 1)
        for o in own[1:]:
            m.add_hint(o.chosen, 0)
    m.minimize(sum(cost_terms))
    solver = model.new_solver(JOINT_WORK)
    if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    out = {}
    for p, own in options.items():
        o = next(o for o in own if solver.value(o.chosen))
        if o.plan is not None:
            out[p] = o.plan
        else:
            assert o.day is not None
            out[p] = o.day.itinerary(solver.value, _chooser(solver, o))
    return out


def _day_option(m: cp_model.CpModel, batch: Batch, req: PatientRequest, day: date,
                on_day: Sequence[FreeSlot], work_limit: float) -> _Option | None:
    """A new one-day plan for ``req`` on ``day`` in the joint model, its places as
    booleans; None when the day could not take every order even with its slots free."""
    pool = {o.order_id: [s for s in on_day if usable(batch.cat, batch.site, batch.tz, req, o, s)]
            for o in req.orders}
    chosen = m.new_bool_var("fresh")
    plan = model.add_day(m, batch.cat, batch.site, batch.tz, req, day, pool,
                         followup="optional", shortest_only=False, active=chosen)
    if plan is None:
        return None
    o = _Option(chosen, day=plan)
    for i, (x, rows) in enumerate(zip(plan.xs, plan.rows, strict=True)):
        picks = []
        for r in rows:
            for s in r.slots:
                b = m.new_bool_var("place")
                o.places[i, s.slot_id] = b
                picks.append(b)
                m.add(x.start == r.start).only_enforce_if(b)
                m.add(x.end == r.end).only_enforce_if(b)
                if not isinstance(x.building, int):
                    m.add(x.building == r.building).only_enforce_if(b)
        m.add(sum(picks) == o.chosen)
    if plan.kept:
        m.add_implication(plan.kept[0], o.chosen)
    return o


def _day_cost(m: cp_model.CpModel, batch: Batch, req: PatientRequest, day: date,
              o: _Option) -> model.Expr:
    """The cost of the new one-day plan when it is chosen, 0 otherwise."""
    plan = o.day
    assert plan is not None
    span = m.new_int_var(0, model.DAY, "span_if")
    m.add(span == plan.span).only_enforce_if(o.chosen)
    m.add(span == 0).only_enforce_if(o.chosen.negated())
    fasting = m.new_int_var(0, 10 * model.DAY, "fasting_if")
    m.add(fasting == plan.fasting).only_enforce_if(o.chosen)
    m.add(fasting == 0).only_enforce_if(o.chosen.negated())
    missed: model.Expr = 0
    if req.followup is not None:
        missed = o.chosen - plan.kept[0] if plan.kept else o.chosen
    return (W_TRIP * (o.chosen + missed) + W_DAY * (day - batch.first).days * o.chosen
            + W_MINUTE * span + W_FAST * fasting)


def _share_capacity(m: cp_model.CpModel, options: dict[int, list[_Option]],
                    room: dict[int, int]) -> None:
    """No slot holds more of the group than it has room for (the others' places out)."""
    users: dict[int, list[cp_model.IntVar]] = {}
    for own in options.values():
        for o in own:
            if o.plan is not None:
                for v in o.plan.visits:
                    users.setdefault(v.slot_id, []).append(o.chosen)
            for (_i, slot_id), b in o.places.items():
                users.setdefault(slot_id, []).append(b)
    for slot_id, bools in users.items():
        if len(bools) > room[slot_id]:
            m.add(sum(bools) <= room[slot_id])


def _chooser(solver: cp_model.CpSolver, o: _Option) -> Callable[[int, model.Row], FreeSlot]:
    """The slot the joint model put exam ``i`` of the option in."""
    def choose(i: int, row: model.Row) -> FreeSlot:
        return next(s for s in row.slots if solver.value(o.places[i, s.slot_id]))
    return choose
