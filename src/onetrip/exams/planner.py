"""The one-trip planner (EX-2) with OR-Tools CP-SAT, and a first-come-first-served baseline.

For one patient's orders the model (``model.py``) picks one free slot per exam so that every
hard rule of the catalogue holds (preparation, order and gaps, walking between buildings,
fasting exams before what breaks the fast, sedation last, days that may not be shared, the
follow-up after the results it needs) with the fewest trips, then the least time in hospital.
The search goes day by day, earliest first, with a one-day model: the first day that takes
every order and the follow-up gives the one-trip itinerary (then, if the follow-up cannot
have its results that day, the first day that takes every order: two trips). Only when no
day takes every order does one model over all the days spread them over the fewest trips.

Batch mode (``batch.py``) re-plans a day's patients together over shared slot capacity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onetrip.exams import model
from onetrip.exams.rules import (
    FOLLOWUP_MINUTES,
    Catalogue,
    FreeSlot,
    Itinerary,
    PatientRequest,
    Site,
    Visit,
    clear_followup,
    fits_with,
    rule_order,
    usable,
    visit_for,
)

#: Deterministic-time limit of a one-day model; they finish far below it (benchmark).
ONE_DAY_LIMIT = 1.0


def candidates_for(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest,
                   slots: Sequence[FreeSlot], taken: Counter[int]) -> dict[int, list[FreeSlot]]:
    """Per order, the slots its exam may use (unary rules, and the rules with the exams
    booked already), with room left after ``taken``."""
    out: dict[int, list[FreeSlot]] = {}
    for item in req.orders:
        out[item.order_id] = [s for s in slots if item.exam_code in s.exam_codes
                              and taken[s.slot_id] < s.free
                              and usable(cat, site, tz, req, item, s)]
    return out


def plan_patient(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest,
                 slots: Sequence[FreeSlot], *, taken: Counter[int] | None = None,
                 work_limit: float = 1.0) -> Itinerary:
    """EX-2: the itinerary with the fewest trips (one where the rules allow), then the
    least time in hospital. ``taken`` counts places already used in ``slots``."""
    taken = taken if taken is not None else Counter()
    req = clear_followup(req, site)
    candidates = candidates_for(cat, site, tz, req, slots, taken)
    if not any(candidates.values()):
        return Itinerary(req.patient_id, [], None, [i.order_id for i in req.orders])
    # A day the patient comes for a booked exam anyway first: no trip more.
    held = {v.start.astimezone(tz).date() for v in req.held}
    days = sorted({s.start.astimezone(tz).date() for v in candidates.values() for s in v},
                  key=lambda d: (d not in held, d))
    # One trip, on the earliest day that allows it. Failing that, one day of exams whose
    # follow-up must wait for its results is two trips, as few as any spread over days.
    for keep in (True, False) if req.followup is not None else (True,):
        for day in days:
            one = model.solve(cat, site, tz, req, [day], candidates, taken, keep_followup=keep,
                              work_limit=ONE_DAY_LIMIT)
            if one is not None:
                taken.update(v.slot_id for v in one.visits)
                return one
    greedy = plan_greedy(cat, site, tz, req, slots, taken=Counter(taken))
    found = None
    if all(candidates.values()):
        found = model.solve(cat, site, tz, req, days, candidates, taken, keep_followup=False,
                            work_limit=work_limit, hint=greedy)
    # No sound plan in time (or some order has no slot at all): the baseline's plan
    # places what it can, and is never worse than nothing.
    itinerary = found if found is not None and _score(found, req, tz) <= _score(
        greedy, req, tz) else greedy
    taken.update(v.slot_id for v in itinerary.visits)
    return itinerary


def _score(it: Itinerary, req: PatientRequest, tz: ZoneInfo) -> tuple[int, int, int]:
    missed = int(req.followup is not None and it.followup_at is None)
    return (len(it.unplanned), it.trips(tz) + missed, it.hospital_minutes(tz))


def plan_greedy(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest,
                slots: Sequence[FreeSlot], *, taken: Counter[int] | None = None) -> Itinerary:
    """First come, first served: each exam at the earliest slot that keeps the rules with
    the exams already booked, in the order the rules require, as departments book alone."""
    taken = taken if taken is not None else Counter()
    req = clear_followup(req, site)
    ordered = sorted(slots, key=lambda s: (s.start, s.slot_id))
    placed: list[Visit] = []
    unplanned = []
    for item in rule_order(cat, req.orders):
        exam = cat.exams[item.exam_code]
        for slot in ordered:
            if taken[slot.slot_id] >= slot.free or not usable(cat, site, tz, req, item, slot):
                continue
            visit = visit_for(slot, item, exam)
            if fits_with(cat, site, tz, placed, visit):
                placed.append(visit)
                taken[slot.slot_id] += 1
                break
        else:
            unplanned.append(item.order_id)
    placed.sort(key=lambda v: v.start)
    return Itinerary(req.patient_id, placed, _greedy_followup(cat, site, req, placed),
                     unplanned)


def _greedy_followup(cat: Catalogue, site: Site, req: PatientRequest,
                     placed: list[Visit]) -> datetime | None:
    """The earliest follow-up time in the window after the results and clear of the exams."""
    f = req.followup
    if f is None:
        return None
    at = f.opens
    for v in placed:
        if any(o.order_id == v.order_id and o.needed_for_followup for o in req.orders):
            at = max(at, v.end + timedelta(minutes=cat.exams[v.exam_code].result_minutes))
    times = f.times()
    if times is None:  # any time in the window, in steps of five minutes
        times = tuple(at + timedelta(minutes=5 * k)
                      for k in range(int((f.closes - at).total_seconds() // 300) + 1))
    for t in times:
        clash = t < at or any(not (
            v.busy_until + timedelta(minutes=site.walk_minutes(v.building, f.building)) <= t
            or t + timedelta(minutes=FOLLOWUP_MINUTES
                             + site.walk_minutes(v.building, f.building)) <= v.start)
            for v in placed)
        if not clash:
            return t
    return None


def difficulty(cat: Catalogue, req: PatientRequest) -> tuple[int, int, int]:
    """Sort key: the most exams first, then the most fasting or time-bound ones."""
    exams = [cat.exams[o.exam_code] for o in req.orders]
    return (-len(exams), -sum(e.fasting or e.latest_start is not None for e in exams),
            req.patient_id)


def greedy_batch(cat: Catalogue, site: Site, tz: ZoneInfo, requests: Sequence[PatientRequest],
                 slots: Sequence[FreeSlot]) -> list[Itinerary]:
    """The baseline over the same day: patients in the order they came, exams as ordered."""
    taken: Counter[int] = Counter()
    return [plan_greedy(cat, site, tz, r, slots, taken=taken) for r in requests]
