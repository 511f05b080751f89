"""Batch mode (EX-2): a day's patients re-planned together, never worse than one by one."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from onetrip.exams import batch, sample, validate
from onetrip.exams.rules import FollowUp, Itinerary, PatientRequest
from tests.exams.world import CAT, DAY, SITE, SLOTS, TZ, at, request


def in_turn(reqs: list[PatientRequest]) -> batch.Batch:
    b = batch.Batch(CAT, SITE, TZ, {r.patient_id: r for r in reqs},
                    {s.slot_id: s for s in SLOTS}, DAY)
    batch.in_turn(b, work_limit=0.1)
    return b


def total(b: batch.Batch, its: list[Itinerary]) -> int:
    return sum(b.cost(it.patient_id, it) for it in its)


def test_ex2_a_patient_without_a_follow_up_gives_up_the_day_to_one_with() -> None:
    """One barium room with a single morning slot a day. Taken in turn, the first patient
    (no follow-up) has it today and the second, whose doctor waits for the results this
    afternoon, comes tomorrow and misses the follow-up. Together, the first comes
    tomorrow instead: one trip each, the follow-up kept."""
    barium = {s.slot_id for s in SLOTS if "barium_meal" in s.exam_codes
              and s.start.astimezone(TZ).time().hour == 9 and s.start.minute == 0}
    slots = [s for s in SLOTS if "barium_meal" not in s.exam_codes or s.slot_id in barium]
    first = request("us_abdomen", "barium_meal", "blood_routine", patient_id=1)
    second = replace(request("us_abdomen", "barium_meal", "blood_routine", followup=True,
                             patient_id=2),
                     orders=tuple(replace(o, order_id=o.order_id + 10)
                                  for o in first.orders))
    reqs = [first, second]
    b = batch.Batch(CAT, SITE, TZ, {r.patient_id: r for r in reqs},
                    {s.slot_id: s for s in slots}, DAY)
    batch.in_turn(b, work_limit=0.1)
    assert b.plans[2].followup_at is None  # one by one: the follow-up is missed
    its = batch.plan_batch(CAT, SITE, TZ, reqs, slots, work_limit=0.1)
    assert validate.validate(CAT, SITE, TZ, reqs, its, slots) == []
    one, two = its
    assert two.followup_at is not None and two.days(TZ) == [DAY]
    assert one.days(TZ) == [DAY + timedelta(days=1)] and one.unplanned == []
    assert total(b, its) < total(b, [b.plans[1], b.plans[2]])


@pytest.mark.parametrize("seed", [4, 5])
def test_ex2_the_batch_is_sound_and_never_worse_than_planning_in_turn(seed: int) -> None:
    """A crowded morning (40 patients, all with a follow-up, some arriving late): the
    validator passes every itinerary and the shared capacity, and the joint re-plan costs
    no more than the sequential plan, nor does it give anyone more trips in total."""
    rng = random.Random(seed)
    reqs = [replace(r, not_before=at(rng.choice(["07:00", "08:30"])),
                    followup=FollowUp(at("13:30"), at("16:45"), "门诊楼"))
            for r in sample.day_requests(CAT, patients=40, day=DAY, tz=TZ, seed=seed)]
    b = in_turn(reqs)
    sequential = [b.plans[r.patient_id] for r in reqs]
    its = batch.plan_batch(CAT, SITE, TZ, reqs, SLOTS, work_limit=0.1)
    assert validate.validate(CAT, SITE, TZ, reqs, its, SLOTS) == []
    assert total(b, its) <= total(b, sequential)

    def trips(plans: list[Itinerary]) -> int:
        return sum(batch.visits_cost(r, it, TZ) for r, it in zip(reqs, plans, strict=True))

    assert trips(its) <= trips(sequential)


def test_an_empty_batch_plans_nothing() -> None:
    assert batch.plan_batch(CAT, SITE, TZ, [], SLOTS) == []


def test_the_joint_model_keeps_every_slot_within_its_room() -> None:
    """Three patients, each with an ECG, and one ECG slot left with room for two: the
    third is left unplanned, never a third place in the slot."""
    ecg = [s for s in SLOTS if "ecg" in s.exam_codes]
    free = ecg[0]
    slots = [free] + [s for s in SLOTS if "ecg" not in s.exam_codes]
    reqs = [request("ecg", "xray_chest", patient_id=p, followup=True) for p in (1, 2, 3)]
    reqs = [replace(r, orders=tuple(replace(o, order_id=10 * r.patient_id + o.order_id)
                                    for o in r.orders)) for r in reqs]
    its = batch.plan_batch(CAT, SITE, TZ, reqs, slots, work_limit=0.1)
    assert validate.validate(CAT, SITE, TZ, reqs, its, slots) == []
    use = Counter(v.slot_id for it in its for v in it.visits)
    assert free.free == 2 and use[free.slot_id] == 2
    assert sorted(len(it.unplanned) for it in its) == [0, 0, 1]
