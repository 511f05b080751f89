"""Every preparation and order rule, each with a case that breaks it (EX-2).

The independent validator must flag the broken case and the greedy baseline's rule check
(``rules.fits_with``) must refuse it; the sound case passes both.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from onetrip.exams import rules, validate
from onetrip.exams.catalogue import (
    CatalogueInvalid,
    catalogue_as_data,
    default_catalogue_data,
    parse_catalogue,
)
from onetrip.exams.rules import Itinerary, PatientFacts, PatientRequest, Visit
from tests.exams.world import CAT, DAY, SITE, SLOTS, TZ, at, request, visit


def broken(req: PatientRequest, visits: list[Visit], followup_at: object = None,
           slots: list[rules.FreeSlot] = SLOTS) -> set[str]:
    it = Itinerary(req.patient_id, visits, followup_at)  # type: ignore[arg-type]
    return {v.rule for v in validate.validate(CAT, SITE, TZ, [req], [it], slots)}


def pair_fits(a: Visit, b: Visit) -> bool:
    return rules.fits_with(CAT, SITE, TZ, [a], b) and rules.fits_with(CAT, SITE, TZ, [b], a)


def test_packaged_catalogue_cites_a_source_for_every_exam_and_rule() -> None:
    data = default_catalogue_data()
    assert {e["code"] for e in data["exam"]} >= {
        "us_abdomen", "us_urinary", "us_gyn", "us_early_pregnancy", "us_thyroid", "ct_plain",
        "ct_contrast", "mri", "gastroscopy", "colonoscopy", "barium_meal", "barium_enema",
        "nm_thyroid", "nm_bone", "xray_chest", "ecg", "blood_fasting"}
    for row in data["exam"] + data["order"] + data["not_same_day"]:
        assert row["source"].strip()
    assert parse_catalogue(catalogue_as_data(CAT)) == CAT


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d["order"].append({"first": "us_abdomen", "second": "pet_ct", "reason": "x",
                                  "source": "y"}), "pet_ct"),
    (lambda d: d["order"].append({"first": "gastroscopy", "second": "us_abdomen",
                                  "reason": "x", "source": "y"}), "成环"),
    (lambda d: d["exam"][0].pop("source"), "source"),
    (lambda d: d["exam"][0].update(latest_start="noon"), "HH:MM"),
    (lambda d: d["exam"][0].update(minutes=-5), "minutes应为1到240之间的整数"),
    (lambda d: d["not_same_day"].append({"first": "ecg", "second": "ecg", "reason": "x",
                                         "source": "y"}), "不能相同"),
])
def test_a_broken_catalogue_is_refused_with_a_chinese_reason(change, words) -> None:  # type: ignore[no-untyped-def]
    data = default_catalogue_data()
    change(data)
    with pytest.raises(CatalogueInvalid, match=words):
        parse_catalogue(data)


@pytest.mark.parametrize(("facts", "creatinine_age_days", "allowed"), [
    (PatientFacts(age=40), None, True),
    (PatientFacts(age=65), None, False),
    (PatientFacts(age=65), 30, True),
    (PatientFacts(age=65), 31, False),
    (PatientFacts(age=40, diabetes=True), None, False),
    (PatientFacts(age=40, renal_disease=True), 10, True),
])
def test_iodine_contrast_needs_creatinine_within_30_days_for_the_elderly_renal_and_diabetic(
        facts: PatientFacts, creatinine_age_days: int | None, allowed: bool) -> None:
    if creatinine_age_days is not None:
        facts = PatientFacts(facts.age, facts.renal_disease, facts.diabetes,
                             DAY - timedelta(days=creatinine_age_days))
    req = request("ct_contrast", facts=facts)
    v = visit(req, 0, "09:00")
    slot = next(s for s in SLOTS if s.slot_id == v.slot_id)
    assert rules.slot_allowed(CAT.exams["ct_contrast"], slot, facts, req.not_before,
                              TZ) is allowed
    assert ("creatinine" not in broken(req, [v])) is allowed


def test_abdominal_ultrasound_is_mornings_only() -> None:
    req = request("us_abdomen")
    assert broken(req, [visit(req, 0, "11:30")]) == set()
    assert broken(req, [visit(req, 0, "13:30")]) == {"latest_start"}
    afternoon = next(s for s in SLOTS if s.start == at("13:30") and "us_abdomen" in s.exam_codes)
    assert not rules.slot_allowed(CAT.exams["us_abdomen"], afternoon, req.facts,
                                  req.not_before, TZ)


@pytest.mark.parametrize(("code", "told", "start", "ready"), [
    # 8 hours of fasting: told the evening before, fasting from 22:00, fine in the morning;
    # told at 07:00 that morning, the patient may have had breakfast: not before 15:00.
    ("us_abdomen", ("17:00", -1), "08:00", True),
    ("us_abdomen", ("07:00", 0), "08:00", False),
    ("blood_fasting", ("01:00", 0), "09:00", True),
    ("blood_fasting", ("01:30", 0), "09:00", False),
    ("ct_contrast", ("07:00", 0), "11:00", True),  # 4 hours
    ("ct_contrast", ("07:00", 0), "10:30", False),
    # a full bladder: an hour to drink 800 ml
    ("us_urinary", ("08:00", 0), "09:00", True),
    ("us_urinary", ("08:00", 0), "08:45", False),
    # bowel preparation takes the day before: never the day the patient is told
    ("colonoscopy", ("07:00", 0), "13:30", False),
    ("colonoscopy", ("17:00", -1), "08:00", True),
    ("barium_enema", ("07:00", 0), "15:00", False),
])
def test_preparation_needs_its_time_between_booking_and_the_exam(
        code: str, told: tuple[str, int], start: str, ready: bool) -> None:
    req = request(code, not_before=at(told[0], DAY + timedelta(days=told[1])))
    v = visit(req, 0, start)
    slot = next(s for s in SLOTS if s.slot_id == v.slot_id)
    assert rules.slot_allowed(CAT.exams[code], slot, req.facts, req.not_before, TZ) is ready
    assert ("preparation" not in broken(req, [v])) is ready


@pytest.mark.parametrize(("code", "last_meal", "start", "ready"), [
    # told at 07:30, but nothing eaten since 21:00 yesterday: the fast is long enough
    ("us_abdomen", ("21:00", -1), "08:00", True),
    ("us_abdomen", ("06:00", 0), "08:00", False),  # breakfast at 06:00: not this morning
    ("us_abdomen", None, "08:00", False),  # nothing said: the patient may have eaten
    ("blood_fasting", ("23:30", -1), "07:30", True),
    # fasting does not fill the bladder: the hour of drinking still counts from 07:30
    ("us_urinary", ("21:00", -1), "08:00", False),
])
def test_a_patient_who_came_fasting_needs_no_new_fast(
        code: str, last_meal: tuple[str, int] | None, start: str, ready: bool) -> None:
    since = at(last_meal[0], DAY + timedelta(days=last_meal[1])) if last_meal else None
    req = request(code, facts=PatientFacts(age=40, fasting_since=since),
                  not_before=at("07:30"))
    v = visit(req, 0, start)
    slot = next(s for s in SLOTS if s.slot_id == v.slot_id)
    assert rules.slot_allowed(CAT.exams[code], slot, req.facts, req.not_before, TZ) is ready
    assert ("preparation" not in broken(req, [v])) is ready


def test_ultrasound_before_gastroscopy() -> None:
    req = request("us_abdomen", "gastroscopy")
    good = [visit(req, 0, "08:00"), visit(req, 1, "08:30")]
    bad = [visit(req, 1, "08:00"), visit(req, 0, "09:15")]
    assert broken(req, good) == set() and pair_fits(*good)
    assert "order" in broken(req, bad) and not pair_fits(*bad)


def test_barium_after_ultrasound_or_ultrasound_three_days_later() -> None:
    req = request("us_abdomen", "barium_meal")
    after_barium_same_day = [visit(req, 1, "08:00"), visit(req, 0, "09:00")]
    three_days_later = [visit(req, 1, "08:00"), visit(req, 0, "08:30", DAY + timedelta(days=3))]
    assert "order" in broken(req, after_barium_same_day)
    assert not pair_fits(*after_barium_same_day)
    assert broken(req, three_days_later) == set() and pair_fits(*three_days_later)


@pytest.mark.parametrize(("first", "second"), [
    ("us_thyroid", "nm_thyroid"), ("ct_contrast", "barium_meal"), ("ct_plain", "barium_enema"),
    ("blood_fasting", "ct_contrast"), ("nm_thyroid", "ct_contrast")])
def test_each_order_rule_refuses_the_wrong_order(first: str, second: str) -> None:
    req = request(first, second, facts=PatientFacts(age=40))
    wrong = [visit(req, 1, "08:00"), visit(req, 0, "10:00")]
    right = [visit(req, 0, "08:00"), visit(req, 1, "10:00")]
    assert "order" in broken(req, wrong) and not pair_fits(*wrong)
    assert "order" not in broken(req, right)


def test_iodine_and_gadolinium_contrast_four_hours_apart_either_way() -> None:
    req = request("ct_contrast", "mri")
    assert "gap" in broken(req, [visit(req, 0, "08:00"), visit(req, 1, "10:00")])
    assert "order" in broken(req, [visit(req, 1, "08:00"), visit(req, 0, "10:00")])
    ok = [visit(req, 1, "08:00"), visit(req, 0, "13:30")]
    assert broken(req, ok) == set() and pair_fits(*ok)


def test_gastroscopy_and_barium_meal_never_share_a_day() -> None:
    req = request("gastroscopy", "barium_meal")
    same = [visit(req, 1, "08:00"), visit(req, 0, "09:00")]
    apart = [visit(req, 1, "08:00"), visit(req, 0, "08:00", DAY + timedelta(days=1))]
    assert "same_day" in broken(req, same) and not pair_fits(*same)
    assert "same_day" not in broken(req, apart)


def test_fasting_exams_come_before_drinking_for_a_full_bladder() -> None:
    req = request("us_abdomen", "us_urinary")
    drank_first = [visit(req, 1, "08:00"), visit(req, 0, "09:00")]
    too_soon = [visit(req, 0, "08:00"), visit(req, 1, "08:30")]
    ok = [visit(req, 0, "08:00"), visit(req, 1, "09:15")]
    assert "fasting" in broken(req, drank_first) and not pair_fits(*drank_first)
    assert "fasting" in broken(req, too_soon) and not pair_fits(*too_soon)
    assert broken(req, ok) == set() and pair_fits(*ok)


def test_nothing_after_a_sedated_endoscopy_that_day() -> None:
    req = request("gastroscopy", "ecg")
    bad = [visit(req, 0, "08:00"), visit(req, 1, "10:00")]
    assert "last_of_day" in broken(req, bad) and not pair_fits(*bad)
    assert broken(req, [visit(req, 1, "08:00"),
                        visit(req, 0, "09:00")]) == set()


def test_walking_between_buildings_and_aftercare_take_time() -> None:
    req = request("blood_routine", "xray_chest")
    no_walk = [visit(req, 0, "08:00"), visit(req, 1, "08:10")]
    walked = [visit(req, 0, "08:00"), visit(req, 1, "08:20")]
    assert "overlap" in broken(req, no_walk) and not pair_fits(*no_walk)
    assert broken(req, walked) == set()
    ct = request("ct_contrast", "ecg")
    observed = [visit(ct, 0, "08:00"), visit(ct, 1, "08:40")]  # 30 min observation after CT
    assert "overlap" in broken(ct, observed) and not pair_fits(*observed)


def test_the_follow_up_waits_for_the_results_it_needs() -> None:
    req = request("ct_contrast", followup=True)
    late = visit(req, 0, "13:30")  # report 180 min later: 17:00, after the clinic closes
    assert "followup" in broken(req, [late], at("16:45"))
    early = visit(req, 0, "09:00")
    assert broken(req, [early], at("13:30")) == set()
    assert "followup" in broken(req, [early], at("17:30"))


def test_capacity_resource_and_dropped_orders_are_caught() -> None:
    a, b = request("us_thyroid", patient_id=1), request("us_thyroid", patient_id=2)
    va, vb = visit(a, 0, "08:00"), visit(b, 0, "08:00")
    same_slot = [Itinerary(1, [va]), Itinerary(2, [vb])]
    got = validate.validate(CAT, SITE, TZ, [a, b], same_slot, SLOTS)
    assert [v.rule for v in got] == ["capacity"]
    mri_on_us = rules.Visit(1, "mri", va.slot_id, va.resource_id, va.building, va.start,
                            va.start + timedelta(minutes=30), va.start + timedelta(minutes=30))
    assert "resource" in broken(request("mri"), [mri_on_us])
    assert broken(request("ecg", "xray_chest"), [visit(request("ecg"), 0, "08:00")]) == {
        "dropped"}
