"""A small planning world for the pure tests: the packaged catalogue, the sample hospital's
resources over four days, and helpers to make requests and visits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from onetrip.exams import rules, sample
from onetrip.exams.catalogue import default_catalogue_data, parse_catalogue
from onetrip.exams.rules import (
    FollowUp,
    FreeSlot,
    OrderItem,
    PatientFacts,
    PatientRequest,
    Visit,
)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
CAT = parse_catalogue(default_catalogue_data())
SITE = sample.site()
SLOTS: list[FreeSlot] = [s for k in range(4) for s in sample.slots_for(
    sample.RESOURCES, DAY + timedelta(days=k), TZ, first_id=1 + 10_000 * k)]
ADULT = PatientFacts(age=40)


def at(clock: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=TZ)


#: When the patients of these tests are told of their exams: the evening before ``DAY``,
#: with the night to fast and the day for bowel preparation.
EVENING_BEFORE = datetime.combine(DAY - timedelta(days=1), time(17, 0), tzinfo=TZ)


def request(*codes: str, facts: PatientFacts = ADULT, followup: bool = False,
            not_before: datetime | None = None, patient_id: int = 1) -> PatientRequest:
    """The patient's orders; told the evening before, or earlier by the days of
    preparation at home an exam needs (a thyroid scan's two weeks without iodine)."""
    items = tuple(OrderItem(i + 1, c, needed_for_followup=True) for i, c in enumerate(codes))
    f = FollowUp(at("13:30"), at("16:45"), sample.OUTPATIENT) if followup else None
    ahead = timedelta(days=rules.longest_prep(CAT, codes))
    return PatientRequest(patient_id, facts, items, not_before or EVENING_BEFORE - ahead, f)


def slot_of(code: str, clock: str, day: date = DAY) -> FreeSlot:
    """The first slot that can do ``code`` starting at ``clock``."""
    start = at(clock, day)
    return next(s for s in SLOTS if code in s.exam_codes and s.start == start)


def visit(req: PatientRequest, n: int, clock: str, day: date = DAY) -> Visit:
    item = req.orders[n]
    return rules.visit_for(slot_of(item.exam_code, clock, day), item, CAT.exams[item.exam_code])


def moved(v: Visit, minutes: int) -> Visit:
    d = timedelta(minutes=minutes)
    return replace(v, start=v.start + d, end=v.end + d, busy_until=v.busy_until + d)
