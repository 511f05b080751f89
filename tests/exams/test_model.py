"""The CP-SAT model itself (EX-2): its one-day plans are the best there are, checked by
exhaustive search over small days; its lower bound and its pruning of slots lose no plan;
several days with days between them are still planned by the model."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import product

import pytest

from onetrip.exams import model, planner, validate
from onetrip.exams.rules import (
    FreeSlot,
    Itinerary,
    PatientRequest,
    Site,
    slot_allowed,
    visit_for,
)
from tests.exams.world import CAT, DAY, SITE, SLOTS, TZ, at, request


def fasting_minutes(it: Itinerary) -> int:
    return sum(int((v.end - at("00:00")).total_seconds() // 60) for v in it.visits
               if CAT.exams[v.exam_code].fasting)


def best_by_exhaustive_search(req: PatientRequest, slots: list[FreeSlot], site: Site
                              ) -> tuple[int, int]:
    """Every combination of one slot per order that the validator passes: the least minutes
    in hospital, then the least fasting (sum of the fasting exams' end times)."""
    options = [[s for s in slots if slot_allowed(CAT.exams[o.exam_code], s, req.facts,
                                                 req.not_before, TZ)] for o in req.orders]
    best = None
    for combo in product(*options):
        visits = [visit_for(s, o, CAT.exams[o.exam_code])
                  for s, o in zip(combo, req.orders, strict=True)]
        it = Itinerary(req.patient_id, sorted(visits, key=lambda v: v.start))
        if validate.validate(CAT, site, TZ, [req], [it], slots):
            continue
        score = (it.hospital_minutes(TZ), fasting_minutes(it))
        best = score if best is None or score < best else best
    assert best is not None
    return best


def window(start: str, end: str) -> list[FreeSlot]:
    lo, hi = at(start), at(end)
    return [s for s in SLOTS if lo <= s.start < hi]


@pytest.mark.parametrize("codes", [
    ("us_urinary", "ct_plain", "blood_fasting"),  # drinking for the bladder after fasting
    ("ecg", "xray_chest", "ct_plain", "blood_routine"),  # two buildings, CT rooms of 15/30
    ("us_abdomen", "gastroscopy", "blood_fasting"),  # order rule, sedation last
    ("blood_fasting", "xray_chest", "ct_contrast"),  # blood before contrast; when to eat
    ("blood_fasting", "ecg", "xray_chest"),  # many equally short days, one fasts least
])
def test_ex2_a_one_day_plan_is_the_least_time_in_hospital_then_the_least_fasting(
        codes: tuple[str, ...]) -> None:
    slots = window("07:30", "09:30")
    req = request(*codes)
    it = planner.plan_patient(CAT, SITE, TZ, req, slots)
    assert validate.validate(CAT, SITE, TZ, [req], [it], slots) == []
    assert it.trips(TZ) == 1 and it.unplanned == []
    assert (it.hospital_minutes(TZ), fasting_minutes(it)) == best_by_exhaustive_search(
        req, slots, SITE)


def test_the_shorter_of_two_slots_starting_together_is_taken() -> None:
    """CT1 books 30 minutes, CT2 15, both at 08:00: a plain CT there keeps the patient 15
    minutes, not 30 (the slots pruned as dominated are never better)."""
    slots = [s for s in window("08:00", "08:15") if "ct_plain" in s.exam_codes]
    assert sorted(s.minutes for s in slots) == [15, 30]
    it = planner.plan_patient(CAT, SITE, TZ, request("ct_plain"), slots)
    assert it.hospital_minutes(TZ) == 15


def hub_day() -> tuple[Site, list[FreeSlot]]:
    """Three buildings B, C, D around a hub A: five minutes from A to each, half an hour
    between any two of B, C, D as the hospital entered them (the path through A is not
    assumed). ECG in B, blood in C, X-ray in D, MRI and thyroid scan in A; a slot every five
    minutes from 08:00 to 10:00, as long as the exam."""
    site = Site(walk={("A", "B"): 5, ("A", "C"): 5, ("A", "D"): 5,
                      ("B", "C"): 30, ("B", "D"): 30, ("C", "D"): 30})
    where = {"ecg": "B", "blood_routine": "C", "xray_chest": "D", "mri": "A",
             "nm_thyroid": "A"}
    slots = []
    for n, (code, building) in enumerate(where.items()):
        for k in range(24):
            slots.append(FreeSlot(100 * n + k, n + 1, frozenset({code}), building,
                                  at("08:00") + timedelta(minutes=5 * k),
                                  CAT.exams[code].minutes))
    return site, slots


def test_the_walking_bound_holds_where_the_walks_entered_break_the_triangle() -> None:
    """B, A, C, A, D: 80 minutes of exams and four walks of five, each leaf half an hour
    from the next as the pairwise rule wants. A bound taken from the walks as entered (the
    best path B-A-C-D has one walk of 30) would claim 120 minutes at least."""
    site, slots = hub_day()
    req = request("ecg", "mri", "blood_routine", "nm_thyroid", "xray_chest")
    it = planner.plan_patient(CAT, site, TZ, req, slots)
    assert validate.validate(CAT, site, TZ, [req], [it], slots) == []
    assert it.trips(TZ) == 1 and it.hospital_minutes(TZ) == 100
    assert [v.building for v in it.visits][1::2] == ["A", "A"]


def test_ex2_days_apart_are_planned_by_the_model_not_left_to_the_baseline() -> None:
    """Gastroscopy and barium may not share a day; slots only on Tuesday and Friday. The
    model must see the days as three apart (not as neighbours) to place them at all."""
    slots = [s for s in SLOTS if s.start.astimezone(TZ).date() in (DAY, DAY + timedelta(3))]
    req = request("gastroscopy", "barium_meal", "us_abdomen")
    candidates = planner.candidates_for(CAT, SITE, TZ, req, slots, Counter())
    found = model.solve(CAT, SITE, TZ, req, [DAY, DAY + timedelta(3)], candidates, Counter(),
                        keep_followup=False, work_limit=1.0)
    assert found is not None
    assert validate.validate(CAT, SITE, TZ, [req], [found], slots) == []
    fcfs = planner.plan_greedy(CAT, SITE, TZ, req, slots)
    assert found.trips(TZ) == 2
    assert found.hospital_minutes(TZ) < fcfs.hospital_minutes(TZ)
    assert planner.plan_patient(CAT, SITE, TZ, req, slots).hospital_minutes(TZ) == (
        found.hospital_minutes(TZ))


def test_a_day_without_every_order_is_no_plan() -> None:
    req = request("us_thyroid", "mri")
    slots = [s for s in window("08:00", "12:00") if "mri" not in s.exam_codes]
    candidates = planner.candidates_for(CAT, SITE, TZ, req, slots, Counter())
    assert model.solve(CAT, SITE, TZ, req, [DAY], candidates, Counter(),
                       keep_followup=False, work_limit=1.0) is None
