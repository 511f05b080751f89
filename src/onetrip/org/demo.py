"""The organisation part of the demo region 示范市 (deterministic for a seed)."""

from __future__ import annotations

import random
from decimal import Decimal

from faker import Faker
from sqlalchemy.orm import Session

from onetrip.org import demo_data as data
from onetrip.org.models import (
    Department,
    Hospital,
    Location,
    MedicalAlliance,
    Practitioner,
    Region,
    ServiceLevelFee,
)
from onetrip.org.service import refresh_search_keys

# Share of titles among a tertiary hospital's doctors; other levels are shifted junior.
_TITLES = {
    "tertiary": [("chief_physician", 20), ("associate_chief_physician", 28),
                 ("attending_physician", 34), ("resident_physician", 18)],
    "secondary": [("chief_physician", 8), ("associate_chief_physician", 22),
                  ("attending_physician", 45), ("resident_physician", 25)],
    "primary": [("associate_chief_physician", 10), ("attending_physician", 50),
                ("resident_physician", 40)],
}


def _service_level(rng: random.Random, level: str, title: str) -> str:
    if level == "primary":
        return "general"
    if title == "chief_physician":
        return "special_needs" if level == "tertiary" and rng.random() < 0.12 else "expert"
    if title == "associate_chief_physician":
        return "expert" if rng.random() < 0.6 else "specialist"
    if title == "attending_physician":
        return "specialist" if rng.random() < 0.4 else "general"
    return "general"


def _intro(p_title: str, dept: str, specialties: list[str], rng: random.Random) -> str:
    years = {"chief_physician": rng.randint(22, 35), "associate_chief_physician":
             rng.randint(14, 24), "attending_physician": rng.randint(6, 14),
             "resident_physician": rng.randint(1, 5)}[p_title]
    focus = "、".join(specialties[:3]) if specialties else "常见病、多发病"
    return f"从事{dept}临床工作{years}年，擅长{focus}的诊治。"


def _locations(db: Session, h: Hospital) -> dict[str, list[Location]]:
    """Campus → buildings → floors; returns the outpatient floors per building code."""
    campus = Location(hospital_id=h.id, kind="campus", code="main", name="本部院区")
    db.add(campus)
    db.flush()
    floors: dict[str, list[Location]] = {}
    for code, name, n_floors in data.BUILDINGS[h.level]:
        building = Location(hospital_id=h.id, parent_id=campus.id, kind="building",
                            code=code, name=name)
        db.add(building)
        db.flush()
        floors[code] = []
        for f in range(1, n_floors + 1):
            floor = Location(hospital_id=h.id, parent_id=building.id, kind="floor",
                             code=f"{code}{f}", name=f"{name}{f}楼")
            db.add(floor)
            floors[code].append(floor)
    db.flush()
    return floors


def _add_rooms(db: Session, h: Hospital, floor: Location, dept: Department, count: int,
               first_number: int) -> int:
    for i in range(count):
        number = first_number + i
        db.add(Location(hospital_id=h.id, parent_id=floor.id, kind="room",
                        code=f"{floor.code}-{number}", name=f"{floor.name}{number}诊室"))
    return first_number + count


def load_org(db: Session, seed: int) -> Region:
    """Create the region, its alliance, hospitals, buildings, departments and doctors."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    region = Region(code=data.REGION[0], name=data.REGION[1], province=data.REGION[2],
                    is_demo=True, demo_seed=seed)
    db.add(region)
    db.flush()
    alliance = MedicalAlliance(region_id=region.id, code=data.ALLIANCE[0], name=data.ALLIANCE[1])
    db.add(alliance)
    db.flush()
    for idx, (code, name, short, level, kind, address, phone, holidays, weekdays) in enumerate(
        data.HOSPITALS
    ):
        beds = {"tertiary": rng.randint(1200, 2200), "secondary": rng.randint(400, 700),
                "primary": rng.randint(20, 60)}[level]
        visits = {"tertiary": rng.randint(150, 320), "secondary": rng.randint(40, 90),
                  "primary": rng.randint(5, 15)}[level]
        h = Hospital(
            region_id=region.id, code=code, name=name, short_name=short, level=level,
            kind=kind, alliance_id=alliance.id, is_alliance_lead=idx == 0,
            introduction=data.INTRO[level].format(
                name=name, kind={"general": "综合医院", "tcm": "中医医院"}.get(kind, "医院"),
                beds=beds, visits=visits, alliance=alliance.name),
            address=address, phone=phone, clinic_weekdays=weekdays, holiday_clinics=holidays,
            postal_code=data.POSTAL_CODES.get(code, data.CITY_POSTAL_CODE),
        )
        refresh_search_keys(h)
        db.add(h)
        db.flush()
        for service_level, fee in data.FEES[level].items():
            db.add(ServiceLevelFee(hospital_id=h.id, service_level=service_level,
                                   fee=Decimal(fee)))
        _load_departments(db, h, rng, fake)
    db.flush()
    return region


def _load_departments(db: Session, h: Hospital, rng: random.Random, fake: Faker) -> None:
    floors = _locations(db, h)
    outpatient = floors["mz"] if "mz" in floors else floors["zh"]
    by_code: dict[str, Department] = {}
    titles, weights = zip(*_TITLES[h.level], strict=True)
    doctor_no = 0
    room_no: dict[int, int] = {}
    for order, (code, name, aliases, parent, specialties, doctors) in enumerate(
        data.DEPARTMENTS_BY_KIND[(h.level, h.kind)]
    ):
        floor = outpatient[min(len(outpatient) - 1, (order * len(outpatient)) //
                               len(data.DEPARTMENTS_BY_KIND[(h.level, h.kind)]))]
        dept = Department(
            hospital_id=h.id, code=code, name=name, aliases=aliases,
            parent_id=by_code[parent].id if parent else None,
            introduction=(f"{name}位于{floor.name}，开设{'、'.join(specialties[:4])}等专病门诊。"
                          if specialties else f"{name}下设多个亚专科。"),
            location_id=floor.id if doctors else None, is_clinical=doctors > 0,
            sort_order=order,
        )
        refresh_search_keys(dept)
        db.add(dept)
        db.flush()
        by_code[code] = dept
        if doctors:
            start = room_no.get(floor.id, floor_number(floor) * 100 + 1)
            room_no[floor.id] = _add_rooms(db, h, floor, dept, max(2, doctors // 2), start)
        for _ in range(doctors):
            doctor_no += 1
            title = rng.choices(titles, weights)[0]
            own = rng.sample(specialties, k=min(len(specialties), rng.randint(2, 3)))
            prac = Practitioner(
                hospital_id=h.id, code=f"d{doctor_no:04d}", name=fake.name(),
                gender=rng.choice(["男", "女"]), title=title,
                service_level=_service_level(rng, h.level, title), specialties=own,
                introduction=_intro(title, name, own, rng),
            )
            refresh_search_keys(prac)
            prac.departments.append(dept)
            db.add(prac)
    db.flush()


def floor_number(floor: Location) -> int:
    digits = "".join(ch for ch in floor.code if ch.isdigit())
    return int(digits) if digits else 1
