"""The one-trip planner against the greedy baseline, checked by the independent validator.

EX-2: several exams in one trip wherever the rules allow; otherwise the fewest trips.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from onetrip.exams import batch, planner, sample, validate
from onetrip.exams.rules import Itinerary, PatientFacts, PatientRequest
from tests.exams.world import CAT, DAY, SITE, SLOTS, TZ, at, request


def sound(reqs: list[PatientRequest], its: list[Itinerary]) -> None:
    assert validate.validate(CAT, SITE, TZ, reqs, its, SLOTS) == []


def test_ex2_ultrasound_gastroscopy_fasting_blood_and_contrast_ct_in_one_trip() -> None:
    req = request("ct_contrast", "gastroscopy", "us_abdomen", "blood_fasting", followup=True)
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    sound([req], [it])
    assert it.trips(TZ) == 1 and it.unplanned == [] and it.followup_at is not None
    order = [v.exam_code for v in it.visits]
    assert order.index("us_abdomen") < order.index("gastroscopy")
    assert order.index("blood_fasting") < order.index("ct_contrast")
    assert order[-1] == "gastroscopy"  # sedation last of the day
    assert it.visits[0].start.astimezone(TZ).date() == DAY


def test_ex2_the_planner_beats_first_come_first_served_on_one_patient() -> None:
    """FCFS books the contrast CT first at 08:00; the fasting ultrasound then waits for a
    second morning. The planner fits both into one."""
    req = request("ct_contrast", "us_abdomen", "gastroscopy", "blood_fasting")
    ours = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    fcfs = planner.plan_greedy(CAT, SITE, TZ, req, SLOTS)
    sound([req], [ours])
    sound([req], [fcfs])
    assert ours.trips(TZ) == 1 < fcfs.trips(TZ)


def test_a_pair_that_cannot_share_a_day_takes_two_trips_not_more() -> None:
    req = request("gastroscopy", "barium_meal", "us_abdomen")
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    sound([req], [it])
    assert it.trips(TZ) == 2 and it.unplanned == []


def test_full_slots_move_the_trip_to_the_next_day_never_overbook() -> None:
    req = request("us_thyroid", "ecg")
    taken = Counter({s.slot_id: s.free for s in SLOTS if s.start.date() == DAY
                     and "us_thyroid" in s.exam_codes})
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS, taken=taken)
    sound([req], [it])
    assert it.trips(TZ) == 1 and it.visits[0].start.date() == DAY + timedelta(days=1)


def test_without_a_creatinine_result_the_contrast_ct_is_left_unplanned() -> None:
    req = request("ct_contrast", "us_thyroid", facts=PatientFacts(age=72))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    sound([req], [it])
    assert it.unplanned == [1] and [v.exam_code for v in it.visits] == ["us_thyroid"]


def test_nothing_before_the_moment_of_planning() -> None:
    req = request("ecg", "xray_chest", not_before=at("15:00"))
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    sound([req], [it])
    assert all(v.start >= at("15:00") for v in it.visits)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_days_planner_and_fcfs_plans_are_sound_and_ours_take_fewer_trips(
        seed: int) -> None:
    """Seeded days of 25 patients: the validator finds nothing wrong in either batch, and
    the planner never needs more trips in total than first-come-first-served."""
    rng = random.Random(seed)
    reqs = sample.day_requests(CAT, patients=25, day=DAY, tz=TZ, seed=seed)
    # some patients arrive later in the morning, some are elderly without a creatinine
    reqs = [replace(r, not_before=at(rng.choice(["07:00", "09:00", "10:30"])),
                    facts=replace(r.facts, creatinine_on=None) if rng.random() < 0.2
                    else r.facts) for r in reqs]
    ours = batch.plan_batch(CAT, SITE, TZ, reqs, SLOTS, work_limit=0.1)
    fcfs = planner.greedy_batch(CAT, SITE, TZ, reqs, SLOTS)
    sound(reqs, ours)
    sound(reqs, fcfs)

    def trips(its: list[Itinerary]) -> int:
        return sum(it.trips(TZ) + (r.followup is not None and it.followup_at is None)
                   for it, r in zip(its, reqs, strict=True))

    assert trips(ours) <= trips(fcfs)
    assert sum(len(it.unplanned) for it in ours) <= sum(len(it.unplanned) for it in fcfs) + 2


def test_the_validator_catches_a_plan_moved_into_a_clash() -> None:
    req = request("us_abdomen", "gastroscopy")
    it = planner.plan_patient(CAT, SITE, TZ, req, SLOTS)
    gastro = next(v for v in it.visits if v.exam_code == "gastroscopy")
    us = next(v for v in it.visits if v.exam_code == "us_abdomen")
    clash = Itinerary(1, [us, replace(gastro, start=us.start, end=us.end,
                                      busy_until=us.busy_until)])
    assert validate.validate(CAT, SITE, TZ, [req], [clash], SLOTS)
