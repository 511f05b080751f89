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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise, permutations
from zoneinfo import ZoneInfo

from ortools.sat.python import cp_model

from onetrip.exams.rules import (
    FOLLOWUP_MINUTES,
    Catalogue,
    ExamType,
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
             buildings: Sequence[str]) -> list[Row]:
    """The ways to do ``exam`` in ``slots``. Of slots starting together in one building only
    those ending first are kept: a patient takes one place at a time, and an earlier end
    leaves every other rule at least as easy to keep."""
    first = epoch.date()
    best: dict[tuple[int, int], tuple[int, list[FreeSlot]]] = {}
    for s in slots:
        start = int((s.start - epoch).total_seconds() // 60)
        end = start + max(s.minutes, exam.minutes)
        key = (start, buildings.index(s.building))
        got = best.get(key)
        if got is None or end < got[0]:
            best[key] = (end, [s])
        elif end == got[0]:
            got[1].append(s)
    return [Row(start, end, b, (slots_[0].start.astimezone(tz).date() - first).days,
                tuple(slots_))
            for (start, b), (end, slots_) in sorted(best.items())]


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
          constraint: cp_model.BoundedLinearExpression | bool) -> None:
    """``constraint`` where ``cond`` holds (a known condition or a boolean)."""
    if cond is True:
        m.add(constraint)
    elif cond is not False:
        m.add(constraint).only_enforce_if(cond)


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
                   exams: Sequence[ExamType], xs: Sequence[ExamVars]) -> None:
    """One patient's exams: never two at once (with the walk between), order rules and
    gaps, no pair a rule keeps apart on one day, fasting exams before what breaks the fast,
    sedation last of the day."""
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            a, b = xs[i], xs[j]
            same = same_day(m, a.day, b.day)
            w = walk(m, site, buildings, a.building, b.building)
            y = m.new_bool_var("before")
            m.add(a.busy + w <= b.start).only_enforce_if(y)
            m.add(b.busy + w <= a.start).only_enforce_if(y.negated())
            for rule in cat.order_rules(exams[i].code, exams[j].code):
                p, q = (a, b) if rule.first == exams[i].code else (b, a)
                if rule.reverse_minutes is None:
                    m.add(p.end + rule.gap_minutes <= q.start)
                    continue
                z = m.new_bool_var("forward")
                m.add(p.end + rule.gap_minutes <= q.start).only_enforce_if(z)
                m.add(q.end + rule.reverse_minutes <= p.start).only_enforce_if(z.negated())
            if cat.banned_same_day(exams[i].code, exams[j].code):
                if same is True:
                    m.add_bool_or([])  # the two cannot share this day: no plan
                elif same is not False:
                    m.add(same == 0)
            for (ea, va), (eb, vb) in (((exams[i], a), (exams[j], b)),
                                       ((exams[j], b), (exams[i], a))):
                if ea.fasting and eb.breaks_fast:
                    _when(m, same, va.end + eb.drink_before_minutes <= vb.start)
                if ea.last_of_day and not eb.last_of_day:
                    _when(m, same, vb.start + 1 <= va.start)




def _minute(epoch: datetime, at: datetime) -> int:
    return int((at - epoch).total_seconds() // 60)


def solve(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest, days: Sequence[date],
          candidates: dict[int, list[FreeSlot]], taken: Counter[int], *, keep_followup: bool,
          work_limit: float, hint: Itinerary | None = None) -> Itinerary | None:
    """Every order placed on ``days`` (and the follow-up kept, if asked), or None."""
    epoch = datetime.combine(days[0], datetime.min.time(), tzinfo=tz)
    wanted = set(days)
    pool = {o.order_id: [s for s in candidates[o.order_id]
                         if s.start.astimezone(tz).date() in wanted] for o in req.orders}
    single = len(days) == 1
    # One day without keeping the follow-up: the follow-up waits for another trip.
    f = req.followup if keep_followup or not single else None
    if f is not None and f.opens.astimezone(tz).date() not in wanted:
        f = None
    if not all(pool.values()) or (keep_followup and req.followup is not None and f is None):
        return None
    exams = [cat.exams[o.exam_code] for o in req.orders]
    buildings = sorted({s.building for v in pool.values() for s in v}
                       | ({f.building} if f else set()))
    m = Model()
    rows = [rows_for(pool[o.order_id], e, epoch, tz, buildings)
            for o, e in zip(req.orders, exams, strict=True)]
    xs = [exam_vars(m, e, r) for e, r in zip(exams, rows, strict=True)]
    add_pair_rules(m, cat, site, buildings, exams, xs)
    kept: list[Var] = []  # empty: the follow-up is kept for certain
    fv = None
    if f is not None:
        if not keep_followup:
            kept = [m.new_bool_var("kept")]
        fv = m.new_int_var(_minute(epoch, f.opens), _minute(epoch, f.closes), "followup")
        clinic = buildings.index(f.building)
        for o, e, x in zip(req.orders, exams, xs, strict=True):
            if o.needed_for_followup:
                m.add(x.end + e.result_minutes <= fv).only_enforce_if(kept)
            w = walk(m, site, buildings, x.building, clinic)
            y = m.new_bool_var("before_followup")
            m.add(x.busy + w <= fv).only_enforce_if([y, *kept])
            m.add(fv + FOLLOWUP_MINUTES + w <= x.start).only_enforce_if([y.negated(), *kept])
    # Fasting exams are tried first and early: the patient eats as soon as they are done.
    fasting_first = sorted(range(len(xs)), key=lambda i: (not exams[i].fasting, i))
    m.add_decision_strategy([xs[i].start for i in fasting_first], cp_model.CHOOSE_FIRST,
                            cp_model.SELECT_MIN_VALUE)
    fasting = [x for e, x in zip(exams, xs, strict=True) if e.fasting]
    if single:
        solver = _one_trip(m, site, buildings, exams, rows, xs, fv,
                           f.building if f is not None else "", fasting, work_limit)
    else:
        fday = (f.opens.astimezone(tz).date() - days[0]).days if f is not None else None
        offsets = sorted({r.day for rs in rows for r in rs} | ({fday} if fday is not None
                                                                 else set()))
        _trips(m, offsets, xs, fv, fday, kept, fasting)
        if hint is not None:
            chosen = {v.order_id: v.start for v in hint.visits}
            for o, x in zip(req.orders, xs, strict=True):
                if o.order_id in chosen:
                    m.add_hint(x.start, _minute(epoch, chosen[o.order_id]))
        solver = new_solver(work_limit)
        if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solver = None
    if solver is None:
        return None
    visits = []
    for o, e, x, rs in zip(req.orders, exams, xs, rows, strict=True):
        at, end = solver.value(x.start), solver.value(x.end)
        b = x.building if isinstance(x.building, int) else solver.value(x.building)
        row = next(r for r in rs if (r.start, r.end, r.building) == (at, end, b))
        # Of equal slots, the one with most room left (the batch keeps the rest open).
        slot = max(row.slots, key=lambda s: (s.free - taken[s.slot_id], -s.slot_id))
        visits.append(visit_for(slot, o, e))
    followup = (epoch + timedelta(minutes=solver.value(fv))
                if fv is not None and all(solver.value(k) for k in kept) else None)
    visits.sort(key=lambda v: (v.start, v.order_id))
    return Itinerary(req.patient_id, visits, followup, [])


def _one_trip(m: cp_model.CpModel, site: Site, buildings: Sequence[str],
              exams: Sequence[ExamType], rows: Sequence[Sequence[Row]],
              xs: Sequence[ExamVars], fv: Var | None, clinic: str,
              fasting: Sequence[ExamVars], work_limit: float) -> cp_model.CpSolver | None:
    """One day, solved in two steps: the least time in hospital (first arrival to last
    leaving), then, at that, the least fasting. The first step's bound is the exams' own
    minutes, the follow-up's and the shortest walk through their buildings: a plan of
    that length ends it at once, which is the common case."""
    items = [(x.start, x.busy) for x in xs]
    must_visit = {buildings[x.building] for x in xs if isinstance(x.building, int)}
    if fv is not None:
        items.append((fv, fv + FOLLOWUP_MINUTES))
        must_visit.add(clinic)
    own = sum(min(r.end - r.start for r in rs) + e.after_minutes
              for rs, e in zip(rows, exams, strict=True))
    floor = (own + (FOLLOWUP_MINUTES if fv is not None else 0)
             + walk_bound(site, buildings, must_visit))
    arrive = m.new_int_var(0, 2 * DAY, "arrive")
    leave = m.new_int_var(0, 2 * DAY, "leave")
    span = m.new_int_var(floor, 2 * DAY, "span")
    m.add_min_equality(arrive, [start for start, _ in items])
    m.add_max_equality(leave, [busy for _, busy in items])
    m.add(span == leave - arrive)
    m.minimize(span)
    solver = new_solver(work_limit)
    if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    if not fasting:
        return solver
    # The second step starts from the first one's plan and keeps its length.
    m.clear_hints()
    for i in range(len(m.proto.variables)):
        v = m.get_int_var_from_proto_index(i)
        m.add_hint(v, solver.value(v))
    m.add(span == solver.value(span))
    m.minimize(sum(x.end for x in fasting))
    second = new_solver(work_limit, from_plan=True)
    return second if second.solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE) else solver


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
            _when(m, on, arrive <= x.start)
            _when(m, on, leave >= x.busy)
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
