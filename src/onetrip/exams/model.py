"""The CP-SAT model of one patient's itinerary over one or more days (EX-2).

One start per exam, drawn by a table constraint from the free slots of those days as
(start, building, end, day) rows, instead of a boolean per slot; pairwise rules are
linear constraints switched by a few booleans. Times are minutes from the first day's
midnight. The objective, in this order: trips (days used, and a follow-up whose results
would not be ready counts as one more), how late those days are, minutes in hospital, how
long the patient stays fasting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
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
Expr = cp_model.LinearExprT


def new_solver(work_limit: float) -> cp_model.CpSolver:
    """One worker and a limit in deterministic time, so a plan does not depend on the load of
    the machine; these small models need little presolve and no probing (measured on the
    benchmark's day: half the time, the same optima)."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers, p.random_seed = 1, 7
    p.max_deterministic_time, p.max_time_in_seconds = work_limit, 20 * work_limit
    p.cp_model_probing_level, p.symmetry_level, p.max_presolve_iterations = 0, 0, 1
    p.linearization_level = 0
    return solver


def solve(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest, days: Sequence[date],
          candidates: dict[int, list[FreeSlot]], taken: Counter[int], *, keep_followup: bool,
          work_limit: float, hint: Itinerary | None = None) -> Itinerary | None:
    """Every order placed on ``days`` (and the follow-up kept, if asked), or None."""
    epoch = datetime.combine(days[0], datetime.min.time(), tzinfo=tz)
    day_index = {d: i for i, d in enumerate(days)}

    def minute(at: datetime) -> int:
        return int((at - epoch).total_seconds() // 60)

    pool = {o.order_id: [s for s in candidates[o.order_id]
                         if s.start.astimezone(tz).date() in day_index] for o in req.orders}
    single = len(days) == 1
    # One day without keeping the follow-up: the follow-up waits for another trip.
    f = req.followup if keep_followup or not single else None
    fday = day_index.get(f.opens.astimezone(tz).date()) if f else None
    if not all(pool.values()) or (keep_followup and f is not None and fday is None):
        return None
    codes = [o.exam_code for o in req.orders]
    exams = [cat.exams[c] for c in codes]
    if single and any(cat.banned_same_day(a, b)
                              for i, a in enumerate(codes) for b in codes[i + 1:]):
        return None
    buildings = sorted({s.building for v in pool.values() for s in v}
                       | ({f.building} if f else set()))
    m = cp_model.CpModel()
    horizon = (len(days) + 1) * DAY
    starts, ends, busy, places, dayvars = [], [], [], [], []
    for o, exam in zip(req.orders, exams, strict=True):
        rows = sorted({(minute(s.start), buildings.index(s.building),
                        minute(s.start) + max(s.minutes, exam.minutes),
                        day_index[s.start.astimezone(tz).date()]) for s in pool[o.order_id]})
        st, en = m.new_int_var(0, horizon, "s"), m.new_int_var(0, horizon, "e")
        bv, d = m.new_int_var(0, len(buildings) - 1, "b"), m.new_int_var(0, len(days) - 1, "d")
        m.add_allowed_assignments([st, bv, en, d], rows)
        starts.append(st)
        ends.append(en)
        busy.append(en + exam.after_minutes)
        places.append(bv)
        dayvars.append(d)
    walks = [(p, q, site.walk_minutes(bp, bq)) for p, bp in enumerate(buildings)
             for q, bq in enumerate(buildings)]

    def walk(p: cp_model.IntVar, q: cp_model.IntVar | int) -> cp_model.IntVar:
        w = m.new_int_var(0, max(r[2] for r in walks), "w")
        m.add_allowed_assignments([p, q, w], walks)
        return w

    for i in range(len(codes)):
        for j in range(i + 1, len(codes)):
            same: list[cp_model.IntVar] = []  # on one day the same-day rules always hold
            if not single:
                same = [m.new_bool_var("same")]
                m.add(dayvars[i] == dayvars[j]).only_enforce_if(same)
                m.add(dayvars[i] != dayvars[j]).only_enforce_if(same[0].negated())
            w = walk(places[i], places[j])
            y = m.new_bool_var("y")
            m.add(busy[i] + w <= starts[j]).only_enforce_if(y)
            m.add(busy[j] + w <= starts[i]).only_enforce_if(y.negated())
            for rule in cat.order_rules(codes[i], codes[j]):
                a, b = (i, j) if rule.first == codes[i] else (j, i)
                z = m.new_bool_var("z")
                m.add(ends[a] + rule.gap_minutes <= starts[b]).only_enforce_if(z)
                if rule.reverse_minutes is None:
                    m.add(z == 1)
                else:
                    m.add(ends[b] + rule.reverse_minutes <= starts[a]).only_enforce_if(
                        z.negated())
            if same and cat.banned_same_day(codes[i], codes[j]):
                m.add(same[0] == 0)
            for a, b in ((i, j), (j, i)):
                if exams[a].fasting and exams[b].breaks_fast:
                    m.add(ends[a] + exams[b].drink_before_minutes <= starts[b]
                          ).only_enforce_if(same)
                if exams[a].last_of_day and not exams[b].last_of_day:
                    m.add(starts[b] + 1 <= starts[a]).only_enforce_if(same)
    kept: list[cp_model.IntVar] = []  # empty: the follow-up is kept for certain
    fv = None
    if f is not None and fday is not None:
        if not single:
            kept = [m.new_bool_var("kept")]
            if keep_followup:
                m.add(kept[0] == 1)
        fv = m.new_int_var(minute(f.opens), minute(f.closes), "followup")
        clinic = buildings.index(f.building)
        for i, o in enumerate(req.orders):
            if o.needed_for_followup:
                m.add(ends[i] + exams[i].result_minutes <= fv).only_enforce_if(kept)
            w = walk(places[i], clinic)
            y = m.new_bool_var("fy")
            m.add(busy[i] + w <= fv).only_enforce_if([y, *kept])
            m.add(fv + FOLLOWUP_MINUTES + w <= starts[i]).only_enforce_if([y.negated(), *kept])
    if single:  # one trip: arrival is the first start, leaving the last end
        arrive = m.new_int_var(0, 2 * DAY, "arrive")
        leave = m.new_int_var(0, 2 * DAY, "leave")
        m.add_min_equality(arrive, [*starts, *([fv] if fv is not None else [])])
        m.add_max_equality(leave, [*busy, *([fv + FOLLOWUP_MINUTES] if fv is not None else [])])
        m.minimize(W_MINUTE * (leave - arrive)
                   + W_FAST * sum(ends[i] for i, e in enumerate(exams) if e.fasting))
    else:
        _trips(m, len(days), dayvars, starts, busy, fv, fday, kept, exams, ends)
    if hint is not None:
        chosen = {v.order_id: v.start for v in hint.visits}
        for i, o in enumerate(req.orders):
            if o.order_id in chosen:
                m.add_hint(starts[i], minute(chosen[o.order_id]))
    solver = new_solver(work_limit)
    if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    visits = []
    for i, o in enumerate(req.orders):
        at, where = solver.value(starts[i]), buildings[solver.value(places[i])]
        slot = _pick(pool[o.order_id], taken, epoch + timedelta(minutes=at), where,
                     exams[i].minutes, solver.value(ends[i]) - at)
        visits.append(visit_for(slot, o, exams[i]))
    followup = (epoch + timedelta(minutes=solver.value(fv))
                if fv is not None and all(solver.value(k) for k in kept) else None)
    visits.sort(key=lambda v: (v.start, v.order_id))
    return Itinerary(req.patient_id, visits, followup, [])


def _pick(slots: Sequence[FreeSlot], taken: Counter[int], at: datetime, building: str,
          exam_minutes: int, length: int) -> FreeSlot:
    """The slot behind a chosen (start, building, length): the one with most room left."""
    fits = [s for s in slots if s.start == at and s.building == building
            and max(s.minutes, exam_minutes) == length]
    return max(fits, key=lambda s: (s.free - taken[s.slot_id], -s.slot_id))


def _trips(m: cp_model.CpModel, n_days: int, dayvars: list[cp_model.IntVar],
           starts: list[cp_model.IntVar], busy: Sequence[Expr], fv: cp_model.IntVar | None,
           fday: int | None, kept: list[cp_model.IntVar], exams: list[ExamType],
           ends: list[cp_model.IntVar]) -> None:
    """Several days: trips (and a missed follow-up) first, then lateness, minutes, fasting."""
    used, spans = [], []
    for k in range(n_days):
        u = m.new_bool_var("used")
        arrive = m.new_int_var(k * DAY, (k + 1) * DAY, "arrive")
        leave = m.new_int_var(k * DAY, (k + 2) * DAY, "leave")
        m.add(leave >= arrive)
        for i in range(len(starts)):
            on = m.new_bool_var("on")
            m.add(dayvars[i] == k).only_enforce_if(on)
            m.add(dayvars[i] != k).only_enforce_if(on.negated())
            m.add_implication(on, u)
            m.add(arrive <= starts[i]).only_enforce_if(on)
            m.add(leave >= busy[i]).only_enforce_if(on)
        if fv is not None and fday == k:
            m.add_bool_or([*(k_.negated() for k_ in kept), u])
            m.add(arrive <= fv).only_enforce_if(kept)
            m.add(leave >= fv + FOLLOWUP_MINUTES).only_enforce_if(kept)
        used.append(u)
        spans.append(leave - arrive)
    # A follow-up whose results would not be ready is one more trip for the patient.
    missed = 1 - kept[0] if kept else 0
    m.minimize(W_TRIP * (sum(used) + missed) + W_DAY * sum(k * u for k, u in enumerate(used))
               + W_MINUTE * sum(spans) + W_FAST * sum(ends[i] for i, e in enumerate(exams)
                                                     if e.fasting))
