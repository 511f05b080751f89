"""Every rule of the catalogue and of the planner, each with a case that breaks it (EX-2).

A case is a patient's orders and a few free slots where the quickest plan would break the
rule. For each one the test plans it twice: once in a world without that one rule, where
the plan must break it and the independent validator must say so (so the case really
tests the rule, and a validator blind to it fails here), and once with every rule, where
the CP-SAT planner, the first-come-first-served baseline and the batch must all keep it (so
a planner blind to it fails here). Every preparation rule of every exam row, every order
rule and every pair kept apart in the packaged catalogue gets its case from the catalogue
itself: a rule added there is tested too. The rules of the planner itself (walking, slot
length, results before the follow-up, the follow-up's bookable times, nothing before the
moment of planning) have a case each below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from onetrip.exams import batch, planner, sample, validate
from onetrip.exams.catalogue import Catalogue, OrderRule
from onetrip.exams.rules import FollowUp, FreeSlot, Itinerary, PatientFacts, PatientRequest, Site
from tests.exams.world import CAT, DAY, SITE, TZ, at, request

BUILDING = {code: spec.building for spec in reversed(sample.RESOURCES)
            for code in spec.exam_codes}


@dataclass(frozen=True)
class World:
    cat: Catalogue
    site: Site
    req: PatientRequest


Change = Callable[[World], World]


@dataclass(frozen=True)
class Case:
    rule: str  # the rule, as docs/exams.md names it
    req: PatientRequest
    #: Free slots: exam, days after DAY, start, and the slot's minutes (the exam's if 0).
    slots: tuple[tuple[str, int, str, int], ...]
    without: Change  # the same world without this one rule
    flag: str  # what the validator calls the broken rule
    before: Change = lambda w: w  # other rules taken out of the way of this one
    unplanned: tuple[int, ...] = ()

    def world(self) -> World:
        return self.before(World(CAT, SITE, self.req))

    def free_slots(self, cat: Catalogue) -> list[FreeSlot]:
        return [FreeSlot(n, n, frozenset({code}), BUILDING[code],
                         at(clock, DAY + timedelta(days=day)),
                         minutes or cat.exams[code].minutes)
                for n, (code, day, clock, minutes) in enumerate(self.slots, 1)]


def exam(code: str, **changes: object) -> Change:
    """The world with one exam's fields changed."""
    def change(w: World) -> World:
        exams = {**w.cat.exams, code: replace(w.cat.exams[code], **changes)}  # type: ignore[arg-type]
        return replace(w, cat=replace(w.cat, exams=exams))
    return change


def both(*changes: Change) -> Change:
    def change(w: World) -> World:
        for c in changes:
            w = c(w)
        return w
    return change


def slot(code: str, day: int, clock: str, minutes: int = 0) -> tuple[str, int, str, int]:
    return (code, day, clock, minutes)


def clock_after(code: str, clock: str, rule_gap: int = 0) -> str:
    """The first half hour at which an exam started at ``clock`` is done with its
    aftercare, the walk and ``rule_gap`` minutes."""
    e = CAT.exams[code]
    end = at(clock) + timedelta(minutes=e.minutes + e.after_minutes + 10 + rule_gap)
    half = -(-(end.hour * 60 + end.minute) // 30) * 30
    return f"{half // 60:02d}:{half % 60:02d}"


def told(clock: str, day: int = 0) -> datetime:
    return at(clock, DAY + timedelta(days=day))


def any_time(w: World) -> World:
    """The follow-up at any time of its window, not only where the clinic has a slot."""
    assert w.req.followup is not None
    return replace(w, req=replace(w.req, followup=replace(w.req.followup, starts=None)))


ELDERLY = PatientFacts(age=65, creatinine_on=DAY - timedelta(days=40))


CASES = [
    Case("楼宇间步行时间", request("blood_routine", "xray_chest"),
         (slot("blood_routine", 0, "08:00"), slot("xray_chest", 0, "08:05"),
          slot("blood_routine", 1, "08:00"), slot("xray_chest", 1, "08:10")),
         lambda w: replace(w, site=Site(default_walk=0)), "overlap"),
    Case("号源时长不短于检查所需", request("mri"),
         (slot("mri", 0, "08:00", 15), slot("mri", 1, "08:00", 30)),
         exam("mri", minutes=15), "duration"),
    Case("复诊前检查结果已出", request("ct_plain", followup=True),
         (slot("ct_plain", 0, "13:00"),), exam("ct_plain", result_minutes=0), "followup"),
    Case("复诊只约在有号的时间", replace(request("ecg", followup=True), followup=FollowUp(
             at("13:30"), at("16:45"), sample.OUTPATIENT, (at("14:30"),))),
         (slot("ecg", 0, "13:00"),), any_time, "followup"),
    Case("不早于预约时刻", request("ecg", not_before=told("09:00")),
         (slot("ecg", 0, "08:00"), slot("ecg", 0, "10:00")),
         lambda w: replace(w, req=replace(w.req, not_before=told("07:00"))), "past"),
]


def hhmm(t: datetime) -> str:
    return f"{t:%H:%M}"


def exam_cases(code: str) -> list[Case]:
    """A case for each rule the exam's row of the catalogue carries."""
    e, name, out = CAT.exams[code], CAT.exams[code].name, []
    if e.fasting_hours:  # told half an hour too late for 08:00, in time for 09:00
        told_at = at("08:00") - timedelta(hours=e.fasting_hours) + timedelta(minutes=30)
        out.append(Case(f"{name}：告知后禁食{e.fasting_hours}小时",
                        request(code, not_before=told_at),
                        (slot(code, 0, "08:00"), slot(code, 0, "09:00")),
                        exam(code, fasting_hours=0), "preparation",
                        before=exam(code, bowel_prep=False)))
    if e.drink_before_minutes:
        out.append(Case(f"{name}：检查前{e.drink_before_minutes}分钟饮水",
                        request(code, not_before=at("08:30") - timedelta(
                            minutes=e.drink_before_minutes)),  # time for 08:30, not 08:00
                        (slot(code, 0, "08:00"), slot(code, 0, "08:30")),
                        exam(code, drink_before_minutes=0), "preparation"))
        out.append(Case(f"{name}：空腹检查结束后才开始饮水",
                        request("blood_fasting", code),
                        (slot("blood_fasting", 0, "08:00"), slot(code, 0, "08:30"),
                         slot("blood_fasting", 1, "08:00"), slot(code, 1, "09:30")),
                        exam(code, drink_before_minutes=0), "fasting"))
    if e.breaks_fast:  # the fast broken first, the fasting blood draw after it
        out.append(Case(f"{name}：空腹检查在前", request("blood_fasting", code),
                        (slot(code, 0, "08:00"), slot("blood_fasting", 0, "09:00"),
                         slot("blood_fasting", 1, "08:00"), slot(code, 1, "09:30")),
                        exam(code, breaks_fast=False), "fasting"))
    if e.bowel_prep:
        out.append(Case(f"{name}：肠道准备须前一天", request(code, not_before=told("00:00")),
                        (slot(code, 0, "09:00"), slot(code, 1, "09:00")),
                        exam(code, bowel_prep=False), "preparation"))
    if e.prep_days:  # told at 08:00: the day before the preparation is done, and that day
        out.append(Case(f"{name}：提前{e.prep_days}天准备", request(code, not_before=told("08:00")),
                        (slot(code, e.prep_days - 1, "09:00"), slot(code, e.prep_days, "09:00")),
                        exam(code, prep_days=0), "preparation"))
    if e.latest_start is not None:
        late = hhmm(at(f"{e.latest_start:%H:%M}") + timedelta(minutes=30))
        out.append(Case(f"{name}：{e.latest_start:%H:%M}前开始", request(code),
                        (slot(code, 0, late), slot(code, 1, "08:00")),
                        exam(code, latest_start=None), "latest_start"))
    if e.last_of_day:
        out.append(Case(f"{name}：当日最后一项", request(code, "ecg"),
                        (slot(code, 0, "08:00"), slot("ecg", 0, clock_after(code, "08:00")),
                         slot("ecg", 1, "08:00"), slot(code, 1, "09:00")),
                        exam(code, last_of_day=False), "last_of_day"))
    if e.after_minutes:  # the ECG while the patient is still observed
        during = at("08:00") + timedelta(minutes=e.minutes + 10 + 5)
        out.append(Case(f"{name}：检查后留观{e.after_minutes}分钟", request(code, "ecg"),
                        (slot(code, 0, "08:00"), slot("ecg", 0, hhmm(during)),
                         slot(code, 1, "08:00"), slot("ecg", 1, clock_after(code, "08:00"))),
                        exam(code, after_minutes=0), "aftercare",
                        before=exam(code, last_of_day=False)))
    if e.creatinine:
        elderly = PatientFacts(age=e.creatinine_age,
                               creatinine_on=DAY - timedelta(days=e.creatinine_days + 10))
        out.append(Case(f"{name}：{e.creatinine_age}岁以上须{e.creatinine_days}天内肌酐",
                        request(code, facts=elderly), (slot(code, 0, "09:00"),),
                        exam(code, creatinine=False), "creatinine", unplanned=(1,)))
    return out


def without_order(rule: OrderRule) -> Change:
    return lambda w: replace(w, cat=replace(w.cat, orders=tuple(
        r for r in w.cat.orders if r != rule)))


def order_cases(rule: OrderRule) -> list[Case]:
    """The rule's ``second`` first: a day apart where the reverse needs days (or is never
    allowed), the same day where it needs minutes; and, with a gap, ``first`` too soon."""
    a, b = rule.first, rule.second
    name = f"先后：{CAT.exams[a].name}在{CAT.exams[b].name}之前"
    right = (slot(a, 2, "08:00"), slot(b, 3, "08:00"))
    if rule.reverse_minutes is None or rule.reverse_minutes >= 24 * 60:
        wrong = (slot(b, 0, "08:00"), slot(a, 1, "08:00"))
    else:
        wrong = (slot(b, 0, "08:00"), slot(a, 0, clock_after(b, "08:00")))
    out = [Case(name, request(a, b), wrong + right, without_order(rule), "order")]
    if rule.gap_minutes:
        soon = (slot(a, 0, "08:00"), slot(b, 0, clock_after(a, "08:00")))
        later = (slot(a, 1, "08:00"), slot(b, 1, clock_after(a, "08:00", rule.gap_minutes)))
        out.append(Case(f"间隔：{CAT.exams[a].name}后{rule.gap_minutes}分钟", request(a, b),
                        soon + later, without_order(rule), "gap"))
    return out


def ban_case(a: str, b: str) -> Case:
    """Both on one day, where nothing else keeps them apart (sedation taken out of the way:
    it would forbid the second exam of the day on its own)."""
    def without(w: World) -> World:
        return replace(w, cat=replace(w.cat, bans=tuple(
            x for x in w.cat.bans if {x.first, x.second} != {a, b})))
    return Case(f"不同日：{CAT.exams[a].name}与{CAT.exams[b].name}",
                request(a, b),
                (slot(a, 0, "08:00"), slot(b, 0, clock_after(a, "08:00")),
                 slot(a, 1, "08:00"), slot(b, 2, "08:00")),
                without, "same_day",
                before=both(exam(a, last_of_day=False), exam(b, last_of_day=False)))


CATALOGUE_CASES = ([c for code in CAT.exams for c in exam_cases(code)]
                   + [c for r in CAT.orders for c in order_cases(r)]
                   + [ban_case(x.first, x.second) for x in CAT.bans])


def broken(w: World, it: Itinerary, slots: list[FreeSlot]) -> set[str]:
    return {v.rule for v in validate.validate(w.cat, w.site, TZ, [w.req], [it], slots)}


@pytest.mark.parametrize("case", CASES + CATALOGUE_CASES, ids=lambda c: c.rule)
def test_each_rule_has_a_case_that_breaks_it(case: Case) -> None:
    w = case.world()
    slots = case.free_slots(w.cat)
    blind = case.without(w)
    # Without the rule the planner and the baseline break it, and the validator says so.
    assert case.flag in broken(w, planner.plan_patient(
        blind.cat, blind.site, TZ, blind.req, slots), slots)
    assert case.flag in broken(w, planner.plan_greedy(
        blind.cat, blind.site, TZ, blind.req, slots), slots)
    # With it, the planner, the baseline and the batch keep every rule.
    for it in (planner.plan_patient(w.cat, w.site, TZ, w.req, slots),
               planner.plan_greedy(w.cat, w.site, TZ, w.req, slots),
               batch.plan_batch(w.cat, w.site, TZ, [w.req], slots)[0]):
        assert broken(w, it, slots) == set()
        assert tuple(it.unplanned) == case.unplanned


def test_every_rule_of_the_catalogue_has_its_case() -> None:
    named = [c.rule for c in CASES + CATALOGUE_CASES]
    assert len(set(named)) == len(named)
    assert len([c for c in CATALOGUE_CASES if c.flag in ("order", "same_day")]) == (
        len(CAT.orders) + len(CAT.bans))
    with_rules = {code for code, e in CAT.exams.items() if e.fasting_hours or e.breaks_fast
                  or e.drink_before_minutes or e.bowel_prep or e.latest_start or e.last_of_day
                  or e.after_minutes or e.creatinine or e.prep_days}
    assert with_rules <= {c.req.orders[-1].exam_code for c in CATALOGUE_CASES} | {
        c.req.orders[0].exam_code for c in CATALOGUE_CASES}
