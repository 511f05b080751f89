"""The CP-SAT model of one patient's itinerary over one or more days (EX-2).

Each exam is a start variable whose domain is the starts of its free slots; its end and
building are constants of that start when all its slots agree (the usual case), else they
come from a table of (start, end, building, day) rows. Of slots starting together in one
building only the shortest are kept. Pairwise rules are linear constraints switched by a
few booleans. Times are minutes from the first day's midnight.

One day (the common case) is solved in two steps: the least time in hospital, then, at
that, the least fasting (the sum of the times the fasting exams end). The first step knows
a lower bound, the exams' own minutes plus the shortest walk through their buildings, so a
plan of that length ends the search as soon as it is found. Several days are one weighted
objective: trips (days used, and a follow-up whose results would not be ready counts as
one more), how late those days are, minutes in hospital, fasting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise, permutations
from zoneinfo import ZoneInfo

from ortools.sat.python import cp_model

from onetrip.exams.rules import (
    FOLLOWUP_MINUTES,
    Catalogue,
    ExamType,
    FollowUp,
    FreeSlot,
    Itinerary,
    PatientRequest,
    Site,
    visit_for,
)

DAY = 24 * 60
W_TRIP, W_DAY, W_MINUTE, W_FAST = 100_000, 200, 10, 1
Expr = cp_model.LinearExpr | int
Var = cp_model.IntVar
#: A building index or day offset: a constant when every candidate of the exam agrees.
Place = int | Var


class Model(cp_model.CpModel):
    """A CpModel without the deprecated CamelCase aliases that its constructor adds to
    every instance: they cost about as much as building a one-day itinerary."""

    def _add_pre_pep8_methods(self) -> None:
        return None


def new_solver(work_limit: float, *, from_plan: bool = False) -> cp_model.CpSolver:
    """One worker and a limit in deterministic time, so a plan does not depend on the load
    of the machine; these small models need little presolve and no probing (measured on
    the benchmark's day: the same optima in half the time). ``from_plan``: the model holds
    a complete plan as its hint and its own search order, which the solver follows without
    presolve (a fifth of the time of presolving again)."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers, p.random_seed = 1, 7
    p.max_deterministic_time, p.max_time_in_seconds = work_limit, 20 * work_limit
    p.cp_model_probing_level, p.symmetry_level, p.max_presolve_iterations = 0, 0, 1
    p.linearization_level = 0
    if from_plan:
        p.search_branching, p.cp_model_presolve = cp_model.FIXED_SEARCH, False
    return solver


@dataclass(frozen=True)
class Row:
    """One way to do an exam: start, end and day (minutes and days from the first day's
    midnight), building (an index), and the free slots that give it."""

    start: int
    end: int
    building: int
    day: int
    slots: tuple[FreeSlot, ...]


@dataclass
class ExamVars:
    start: Var
    end: Expr
    busy: Expr
    building: Place
    day: Place


def rows_for(slots: Sequence[FreeSlot], exam: ExamType, epoch: datetime, tz: ZoneInfo,
             buildings: Sequence[str], *, shortest_only: bool = True) -> list[Row]:
    """The ways to do ``exam`` in ``slots``. With ``shortest_only``, of slots starting
    together in one building only those ending first are kept: a patient takes one place
    at a time, and an earlier end leaves every other rule at least as easy to keep."""
    first = epoch.date()
    best: dict[tuple[int, int, int], list[FreeSlot]] = {}
    shortest: dict[tuple[int, int], int] = {}
    for s in slots:
        start = int((s.start - epoch).total_seconds() // 60)
        end = start + max(s.minutes, exam.minutes)
        b = buildings.index(s.building)
        best.setdefault((start, b, end), []).append(s)
        shortest[start, b] = min(end, shortest.get((start, b), end))
    return [Row(start, end, b, (got[0].start.astimezone(tz).date() - first).days, tuple(got))
            for (start, b, end), got in sorted(best.items())
            if not shortest_only or shortest[start, b] == end]


def exam_vars(m: cp_model.CpModel, exam: ExamType, rows: Sequence[Row]) -> ExamVars:
    """An exam's start over its rows' starts; end, building and day as constants where the
    rows agree, else tied to the start by a table."""
    start = m.new_int_var_from_domain(
        cp_model.Domain.from_values(sorted({r.start for r in rows})), "start")
    columns: list[Var] = [start]
    picks = [lambda r: r.start]
    lengths = {r.end - r.start for r in rows}
    end: Expr
    if len(lengths) == 1:
        end = start + lengths.pop()
    else:
        end = m.new_int_var_from_domain(
            cp_model.Domain.from_values(sorted({r.end for r in rows})), "end")
        columns.append(end)
        picks.append(lambda r: r.end)

    def attribute(values: set[int], pick: object, name: str) -> Place:
        if len(values) == 1:
            return values.pop()
        v = m.new_int_var_from_domain(cp_model.Domain.from_values(sorted(values)), name)
        columns.append(v)
        picks.append(pick)  # type: ignore[arg-type]
        return v

    building = attribute({r.building for r in rows}, lambda r: r.building, "building")
    day = attribute({r.day for r in rows}, lambda r: r.day, "day")
    if len(columns) > 1:
        m.add_allowed_assignments(columns, sorted({tuple(p(r) for p in picks) for r in rows}))
    return ExamVars(start, end, end + exam.after_minutes, building, day)


def walk(m: cp_model.CpModel, site: Site, buildings: Sequence[str], a: Place,
         b: Place) -> Expr:
    """Walking minutes between two places, a constant when both buildings are known."""
    if isinstance(a, int) and isinstance(b, int):
        return site.walk_minutes(buildings[a], buildings[b])
    table = [(p, q, site.walk_minutes(bp, bq)) for p, bp in enumerate(buildings)
             for q, bq in enumerate(buildings)]
    w = m.new_int_var(0, max(r[2] for r in table), "walk")
    m.add_allowed_assignments([_var(m, a), _var(m, b), w], table)
    return w


def _var(m: cp_model.CpModel, x: Place) -> Var:
    return m.new_constant(x) if isinstance(x, int) else x


def same_day(m: cp_model.CpModel, a: Place, b: Place) -> bool | Var:
    """Whether two exams share a day: known when both days are, else a boolean."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    same = m.new_bool_var("same")
    m.add(_var(m, a) == _var(m, b)).only_enforce_if(same)
    m.add(_var(m, a) != _var(m, b)).only_enforce_if(same.negated())
    return same


def _when(m: cp_model.CpModel, cond: bool | Var,
          constraint: cp_model.BoundedLinearExpression | bool, on: list[Var]) -> None:
    """``constraint`` where ``cond`` (a known condition or a boolean) and ``on`` hold."""
    if cond is True:
        m.add(constraint).only_enforce_if(on)
    elif cond is not False:
        m.add(constraint).only_enforce_if([cond, *on])


def walk_bound(site: Site, buildings: Sequence[str], visit: set[str]) -> int:
    """The shortest walk through every building of ``visit``, in the best order. Distances
    are shortest paths over ``buildings``, so the bound holds even where a detour through
    another building would be quicker than the walk a hospital entered between two."""
    d = {(a, b): site.walk_minutes(a, b) for a in buildings for b in buildings}
    for k in buildings:
        for a in buildings:
            for b in buildings:
                d[a, b] = min(d[a, b], d[a, k] + d[k, b])
    return min((sum(d[a, b] for a, b in pairwise(p)) for p in permutations(sorted(visit))),
               default=0)


def add_pair_rules(m: cp_model.CpModel, cat: Catalogue, site: Site, buildings: Sequence[str],
                   exams: Sequence[ExamType], xs: Sequence[ExamVars],
                   active: Sequence[Var] = ()) -> None:
    """One patient's exams: never two at once (with the walk between), order rules and
    gaps, no pair a rule keeps apart on one day, fasting exams before what breaks the fast,
    sedation last of the day; only where ``active`` holds (empty: always)."""
    on = list(active)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            a, b = xs[i], xs[j]
            same = same_day(m, a.day, b.day)
            w = walk(m, site, buildings, a.building, b.building)
            y = m.new_bool_var("before")
            m.add(a.busy + w <= b.start).only_enforce_if([y, *on])
            m.add(b.busy + w <= a.start).only_enforce_if([y.negated(), *on])
            for rule in cat.order_rules(exams[i].code, exams[j].code):
                p, q = (a, b) if rule.first == exams[i].code else (b, a)
                if rule.reverse_minutes is None:
                    m.add(p.end + rule.gap_minutes <= q.start).only_enforce_if(on)
                    continue
                z = m.new_bool_var("forward")
                m.add(p.end + rule.gap_minutes <= q.start).only_enforce_if([z, *on])
                m.add(q.end + rule.reverse_minutes <= p.start).only_enforce_if(
                    [z.negated(), *on])
            if cat.banned_same_day(exams[i].code, exams[j].code):
                if same is True:  # the two cannot share this day: no plan
                    m.add_bool_or([v.negated() for v in on])
                elif same is not False:
                    m.add(same == 0).only_enforce_if(on)
            for (ea, va), (eb, vb) in (((exams[i], a), (exams[j], b)),
                                       ((exams[j], b), (exams[i], a))):
                if ea.fasting and eb.breaks_fast:
                    _when(m, same, va.end + eb.drink_before_minutes <= vb.start, on)
                if ea.last_of_day and not eb.last_of_day:
                    _when(m, same, vb.start + 1 <= va.start, on)


def _minute(epoch: datetime, at: datetime) -> int:
    return int((at - epoch).total_seconds() // 60)


def followup_var(m: cp_model.CpModel, f: FollowUp, epoch: datetime) -> Var:
    """The follow-up's start: any minute of its window, or one of its bookable times."""
    times = f.times()
    if times is None:
        return m.new_int_var(_minute(epoch, f.opens), _minute(epoch, f.closes), "followup")
    return m.new_int_var_from_domain(
        cp_model.Domain.from_values([_minute(epoch, t) for t in times]), "followup")


def add_followup(m: cp_model.CpModel, site: Site, buildings: Sequence[str],
                 req: PatientRequest, exams: Sequence[ExamType], xs: Sequence[ExamVars],
                 fv: Var, kept: list[Var]) -> None:
    """The follow-up after the results it needs, clear of every exam and the walk to it;
    only where ``kept`` holds (an empty list: always; in the batch it implies the plan is
    chosen)."""
    assert req.followup is not None
    clinic = buildings.index(req.followup.building)
    for o, e, x in zip(req.orders, exams, xs, strict=True):
        if o.needed_for_followup:
            m.add(x.end + e.result_minutes <= fv).only_enforce_if(kept)
        w = walk(m, site, buildings, x.building, clinic)
        y = m.new_bool_var("before_followup")
        m.add(x.busy + w <= fv).only_enforce_if([y, *kept])
        m.add(fv + FOLLOWUP_MINUTES + w <= x.start).only_enforce_if([y.negated(), *kept])


def _fasting_first(m: cp_model.CpModel, exams: Sequence[ExamType],
                   xs: Sequence[ExamVars]) -> None:
    """Search fasting exams first and early: the patient eats as soon as they are done."""
    order = sorted(range(len(xs)), key=lambda i: (not exams[i].fasting, i))
    m.add_decision_strategy([xs[i].start for i in order], cp_model.CHOOSE_FIRST,
                            cp_model.SELECT_MIN_VALUE)


@dataclass
class DayPlan:
    """One patient's itinerary of one day inside a model, and what reads it back."""

    req: PatientRequest
    exams: list[ExamType]
    rows: list[list[Row]]
    xs: list[ExamVars]
    epoch: datetime
    buildings: list[str]
    fv: Var | None
    kept: list[Var]  # empty: the follow-up (if any) is kept for certain
    span: Var
    fasting: Expr  # the fasting exams' end times, summed (minutes from midnight)

    def itinerary(self, value: Callable[[Expr], int],
                  choose: Callable[[int, Row], FreeSlot]) -> Itinerary:
        """The plan under ``value`` (a solver's), ``choose`` giving the slot of a row."""
        visits = []
        for i, (o, e, x, rs) in enumerate(zip(self.req.orders, self.exams, self.xs,
                                              self.rows, strict=True)):
            at, end = value(x.start), value(x.end)
            b = x.building if isinstance(x.building, int) else value(x.building)
            row = next(r for r in rs if (r.start, r.end, r.building) == (at, end, b))
            visits.append(visit_for(choose(i, row), o, e))
        followup = (self.epoch + timedelta(minutes=value(self.fv))
                    if self.fv is not None and all(value(k) for k in self.kept) else None)
        visits.sort(key=lambda v: (v.start, v.order_id))
        return Itinerary(self.req.patient_id, visits, followup, [])


def add_day(m: cp_model.CpModel, cat: Catalogue, site: Site, tz: ZoneInfo,
            req: PatientRequest, day: date, pool: dict[int, list[FreeSlot]], *,
            followup: str, shortest_only: bool = True,
            active: Var | None = None) -> DayPlan | None:
    """A one-day itinerary of every order over ``pool`` (slots of that day), or None when
    the day cannot have one. ``followup``: "keep" it, make it "optional" (a boolean), or
    "none". ``shortest_only``: see :func:`rows_for`; off where capacity is shared.
    ``active``: the plan's rules hold only where it does (one option among others)."""
    codes = [o.exam_code for o in req.orders]
    if any(not pool[o.order_id] for o in req.orders) or any(
            cat.banned_same_day(a, b) for i, a in enumerate(codes) for b in codes[i + 1:]):
        return None
    f = req.followup if followup != "none" else None
    if f is not None and (f.opens.astimezone(tz).date() != day or f.times() == ()):
        if followup == "keep":  # not this day, or no outpatient slot left in the window
            return None
        f = None
    epoch = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    exams = [cat.exams[c] for c in codes]
    buildings = sorted({s.building for v in pool.values() for s in v}
                       | ({f.building} if f else set()))
    rows = [rows_for(pool[o.order_id], e, epoch, tz, buildings, shortest_only=shortest_only)
            for o, e in zip(req.orders, exams, strict=True)]
    xs = [exam_vars(m, e, r) for e, r in zip(exams, rows, strict=True)]
    on = [active] if active is not None else []
    add_pair_rules(m, cat, site, buildings, exams, xs, on)
    _fasting_first(m, exams, xs)
    fv, kept = None, []
    items: list[tuple[Expr, Expr, list[Var]]] = [(x.start, x.busy, []) for x in xs]
    visit = {buildings[x.building] for x in xs if isinstance(x.building, int)}
    own = sum(min(r.end - r.start for r in rs) + e.after_minutes
              for rs, e in zip(rows, exams, strict=True))
    if f is not None:
        kept = [m.new_bool_var("kept")] if followup == "optional" else []
        fv = followup_var(m, f, epoch)
        add_followup(m, site, buildings, req, exams, xs, fv, kept)
        items.append((fv, fv + FOLLOWUP_MINUTES, kept))
        if not kept:
            visit.add(f.building)
            own += FOLLOWUP_MINUTES
    # At least the exams' own minutes and the walk through their buildings.
    floor = own + walk_bound(site, buildings, visit)
    span = m.new_int_var(0 if on else floor, DAY, "span")
    arrive, leave = m.new_int_var(0, DAY, "arrive"), m.new_int_var(0, 2 * DAY, "leave")
    if kept or on:  # optional parts: the least span is the exact one
        m.add(span >= floor).only_enforce_if(on)
        for start, busy, when in items:
            m.add(arrive <= start).only_enforce_if([*when, *on])
            m.add(leave >= busy).only_enforce_if([*when, *on])
    else:
        m.add_min_equality(arrive, [start for start, _, _ in items])
        m.add_max_equality(leave, [busy for _, busy, _ in items])
    m.add(span == leave - arrive)
    fasting = sum(x.end for e, x in zip(exams, xs, strict=True) if e.fasting)
    return DayPlan(req, exams, rows, xs, epoch, buildings, fv, kept, span, fasting)


def solve(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest, days: Sequence[date],
          candidates: dict[int, list[FreeSlot]], taken: Counter[int], *, keep_followup: bool,
          work_limit: float, hint: Itinerary | None = None) -> Itinerary | None:
    """Every order placed on ``days`` (and the follow-up kept, if asked), or None."""
    wanted = set(days)
    pool = {o.order_id: [s for s in candidates[o.order_id]
                         if s.start.astimezone(tz).date() in wanted] for o in req.orders}

    def roomiest(_i: int, row: Row) -> FreeSlot:
        # Of equal slots, the one with most room left (the batch keeps the rest open).
        return max(row.slots, key=lambda s: (s.free - taken[s.slot_id], -s.slot_id))

    m = Model()
    if len(days) > 1:
        return _several_days(m, cat, site, tz, req, days, pool, roomiest, work_limit, hint)
    plan = add_day(m, cat, site, tz, req, days[0], pool,
                   followup="keep" if keep_followup else "none")
    if plan is None:
        return None
    solver = least_minutes_then_fasting(m, plan.span, plan.fasting, work_limit)
    return plan.itinerary(solver.value, roomiest) if solver is not None else None


def least_minutes_then_fasting(m: cp_model.CpModel, minutes: Expr, fasting: Expr,
                               work_limit: float) -> cp_model.CpSolver | None:
    """Two steps: the least ``minutes`` in hospital, then, keeping them, the least
    ``fasting``. The first step's bound lies in the minutes' domain: a plan of that length
    ends it at once, which is the common case. None: no plan."""
    m.minimize(minutes)
    solver = new_solver(work_limit)
    if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    if isinstance(fasting, int):
        return solver
    # The second step starts from the first one's plan and keeps its length.
    m.clear_hints()
    for i in range(len(m.proto.variables)):
        v = m.get_int_var_from_proto_index(i)
        m.add_hint(v, solver.value(v))
    m.add(minutes == solver.value(minutes))
    m.minimize(fasting)
    second = new_solver(work_limit, from_plan=True)
    return second if second.solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE) else solver


def _several_days(m: cp_model.CpModel, cat: Catalogue, site: Site, tz: ZoneInfo,
                  req: PatientRequest, days: Sequence[date], pool: dict[int, list[FreeSlot]],
                  choose: Callable[[int, Row], FreeSlot], work_limit: float,
                  hint: Itinerary | None) -> Itinerary | None:
    """Every order over several days, the follow-up optional: the fewest trips."""
    if not all(pool.values()):
        return None
    epoch = datetime.combine(days[0], datetime.min.time(), tzinfo=tz)
    f = req.followup
    if f is not None and (f.opens.astimezone(tz).date() not in days or f.times() == ()):
        f = None
    exams = [cat.exams[o.exam_code] for o in req.orders]
    buildings = sorted({s.building for v in pool.values() for s in v}
                       | ({f.building} if f else set()))
    rows = [rows_for(pool[o.order_id], e, epoch, tz, buildings)
            for o, e in zip(req.orders, exams, strict=True)]
    xs = [exam_vars(m, e, r) for e, r in zip(exams, rows, strict=True)]
    add_pair_rules(m, cat, site, buildings, exams, xs)
    _fasting_first(m, exams, xs)
    fv, kept, fday = None, [], None
    if f is not None:
        kept = [m.new_bool_var("kept")]
        fv = followup_var(m, f, epoch)
        add_followup(m, site, buildings, req, exams, xs, fv, kept)
        fday = (f.opens.astimezone(tz).date() - days[0]).days
    offsets = sorted({r.day for rs in rows for r in rs} | ({fday} if fday is not None
                                                             else set()))
    _trips(m, offsets, xs, fv, fday, kept, [x for e, x in zip(exams, xs, strict=True)
                                            if e.fasting])
    if hint is not None:
        chosen = {v.order_id: v.start for v in hint.visits}
        for o, x in zip(req.orders, xs, strict=True):
            if o.order_id in chosen:
                m.add_hint(x.start, _minute(epoch, chosen[o.order_id]))
    solver = new_solver(work_limit)
    if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    plan = DayPlan(req, exams, rows, xs, epoch, buildings, fv, kept, m.new_constant(0), 0)
    return plan.itinerary(solver.value, choose)


def _trips(m: cp_model.CpModel, day_offsets: Sequence[int], xs: Sequence[ExamVars],
           fv: Var | None, fday: int | None, kept: list[Var],
           fasting: Sequence[ExamVars]) -> None:
    """Several days: trips (and a missed follow-up) first, then lateness, minutes, fasting."""
    used, spans = [], []
    for k in day_offsets:
        u = m.new_bool_var("used")
        arrive = m.new_int_var(k * DAY, (k + 1) * DAY, "arrive")
        leave = m.new_int_var(k * DAY, (k + 2) * DAY, "leave")
        m.add(leave >= arrive)
        for x in xs:
            on: bool | Var
            if isinstance(x.day, int):
                on = x.day == k
                if on:
                    m.add(u == 1)
            else:
                on = m.new_bool_var("on")
                m.add(x.day == k).only_enforce_if(on)
                m.add(x.day != k).only_enforce_if(on.negated())
                m.add_implication(on, u)
            _when(m, on, arrive <= x.start, [])
            _when(m, on, leave >= x.busy, [])
        if fv is not None and fday == k:
            m.add_bool_or([*(k_.negated() for k_ in kept), u])
            m.add(arrive <= fv).only_enforce_if(kept)
            m.add(leave >= fv + FOLLOWUP_MINUTES).only_enforce_if(kept)
        used.append(u)
        spans.append(leave - arrive)
    # A follow-up whose results would not be ready is one more trip for the patient.
    missed = 1 - kept[0] if kept else 0
    m.minimize(W_TRIP * (sum(used) + missed) + W_DAY * sum(k * u for k, u in enumerate(used))
               + W_MINUTE * sum(spans)
               # fasting: how late in its own day each fasting exam ends
               + W_FAST * sum(x.end - DAY * x.day for x in fasting))
