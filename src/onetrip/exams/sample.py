"""A tertiary hospital's exam resources and a day of patients' orders, as plain values.

The demo loads these resources into 示范市人民医院; the benchmark and the randomized tests
plan seeded days of patients over them. Everything here is deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from onetrip.exams.rules import (
    Catalogue,
    FollowUp,
    FreeSlot,
    OrderItem,
    PatientFacts,
    PatientRequest,
    Site,
    longest_prep,
)

OUTPATIENT = "门诊楼"
BUILDINGS = (OUTPATIENT, "医技楼", "核医学楼")
WALKS = {(OUTPATIENT, "医技楼"): 5, (OUTPATIENT, "核医学楼"): 8, ("医技楼", "核医学楼"): 6}

AM = ((time(8, 0), time(12, 0)),)
DAYTIME = ((time(8, 0), time(12, 0)), (time(13, 30), time(17, 0)))


@dataclass(frozen=True)
class ResourceSpec:
    code: str
    name: str
    building: str
    room: str
    exam_codes: tuple[str, ...]
    slot_minutes: int
    capacity: int
    hours: tuple[tuple[time, time], ...] = DAYTIME


_US = ("us_abdomen", "us_urinary", "us_gyn", "us_early_pregnancy", "us_thyroid")
RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec("US1", "超声1诊室", "医技楼", "2楼201", _US, 15, 1),
    ResourceSpec("US2", "超声2诊室", "医技楼", "2楼202", _US, 15, 1),
    ResourceSpec("US3", "超声3诊室（妇产）", "医技楼", "2楼203", _US[1:4], 15, 1),
    ResourceSpec("CT1", "CT1室", "医技楼", "1楼105", ("ct_plain", "ct_contrast"), 30, 2),
    ResourceSpec("CT2", "CT2室（平扫）", "医技楼", "1楼106", ("ct_plain",), 15, 1),
    ResourceSpec("MR1", "磁共振1室", "医技楼", "负1楼B01", ("mri",), 30, 1,
                 ((time(8, 0), time(12, 0)), (time(13, 30), time(20, 0)))),
    ResourceSpec("EN1", "内镜中心1室", OUTPATIENT, "4楼内镜中心", ("gastroscopy", "colonoscopy"),
                 30, 1, ((time(8, 0), time(12, 0)), (time(13, 30), time(16, 30)))),
    ResourceSpec("EN2", "内镜中心2室", OUTPATIENT, "4楼内镜中心", ("gastroscopy", "colonoscopy"),
                 30, 1, ((time(8, 0), time(12, 0)), (time(13, 30), time(16, 30)))),
    ResourceSpec("FL1", "胃肠造影室", "医技楼", "1楼110", ("barium_meal", "barium_enema"), 30, 1),
    ResourceSpec("NM1", "核医学显像室", "核医学楼", "1楼", ("nm_thyroid", "nm_bone"), 30, 2),
    ResourceSpec("DR1", "DR摄片室", "医技楼", "1楼101", ("xray_chest",), 10, 2),
    ResourceSpec("EC1", "心电图室", OUTPATIENT, "2楼心电图室", ("ecg",), 10, 2),
    ResourceSpec("LB1", "门诊抽血处", OUTPATIENT, "1楼抽血处", ("blood_fasting", "blood_routine"),
                 10, 5, ((time(7, 30), time(11, 30)), (time(13, 30), time(16, 30)))),
)

#: Orders a clinic typically sends together (the patient then has all of them to do).
BUNDLES: tuple[tuple[str, ...], ...] = (
    ("us_abdomen", "gastroscopy", "blood_fasting"),
    ("us_abdomen", "gastroscopy", "blood_fasting", "ct_contrast"),
    ("us_thyroid", "nm_thyroid", "blood_fasting"),
    ("us_abdomen", "barium_meal", "blood_routine"),
    ("ecg", "xray_chest", "us_abdomen", "blood_fasting"),
    ("us_gyn", "blood_routine"),
    ("us_urinary", "ct_plain", "blood_routine"),
    ("ct_contrast", "blood_fasting", "ecg"),
    ("colonoscopy", "us_abdomen", "blood_fasting"),
    ("mri", "ct_contrast", "blood_fasting"),
    ("us_early_pregnancy", "blood_routine"),
    ("xray_chest", "ecg", "ct_plain", "us_thyroid", "blood_fasting"),
    ("nm_bone", "ct_plain", "blood_routine"),
)


def site() -> Site:
    return Site(walk=WALKS)


def slots_for(resources: tuple[ResourceSpec, ...], day: date, tz: ZoneInfo,
              first_id: int = 1) -> list[FreeSlot]:
    """Every slot of every resource on ``day`` inside its opening hours."""
    out = []
    n = first_id
    for r in resources:
        for opens, closes in r.hours:
            at = datetime.combine(day, opens, tzinfo=tz)
            end = datetime.combine(day, closes, tzinfo=tz)
            while at + timedelta(minutes=r.slot_minutes) <= end:
                out.append(FreeSlot(n, RESOURCES.index(r) + 1, frozenset(r.exam_codes),
                                    r.building, at, r.slot_minutes, r.capacity))
                n += 1
                at += timedelta(minutes=r.slot_minutes)
    return out


def day_requests(cat: Catalogue, *, patients: int, day: date, tz: ZoneInfo, seed: int,
                 followup_share: float = 0.5) -> list[PatientRequest]:
    """A day's patients, each with a bundle of 2 to 5 orders, in the order they came, all
    planned the evening before (time to fast overnight, bowel preparation that day), or
    earlier by the days of preparation at home a bundle's exam needs (a thyroid scan's
    two weeks without iodine)."""
    rng = random.Random(seed)
    out = []
    order_id = 1
    for pid in range(1, patients + 1):
        bundle = [c for c in rng.choice(BUNDLES) if c in cat.exams]
        ahead = 1 + longest_prep(cat, bundle)
        told = datetime.combine(day - timedelta(days=ahead), time(17, 0), tzinfo=tz)
        age = rng.randint(18, 85)
        facts = PatientFacts(age=age, renal_disease=rng.random() < 0.05,
                             diabetes=rng.random() < 0.12,
                             creatinine_on=day - timedelta(days=rng.randint(0, 20)))
        items = []
        for code in bundle:
            items.append(OrderItem(order_id, code, needed_for_followup=code != "blood_routine"))
            order_id += 1
        followup = None
        if rng.random() < followup_share:
            followup = FollowUp(datetime.combine(day, time(13, 30), tzinfo=tz),
                                datetime.combine(day, time(16, 45), tzinfo=tz), OUTPATIENT)
        out.append(PatientRequest(pid, facts, tuple(items), told, followup))
    return out
