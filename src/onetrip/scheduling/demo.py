"""Demo schedules for 示范市: weekly templates, 14 days of sessions, some appointments, and
the past week's visits."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.identity import staff as staff_service
from onetrip.identity.models import FamilyMember, Patient
from onetrip.org import calendar
from onetrip.org.models import Hospital, Location, Practitioner, Region
from onetrip.org.rules import DayStatus, OverrideKind
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, ScheduleTemplate, Slot
from onetrip.scheduling.rules import Pool, PoolTimer, SessionOfDay, effective_pool

DAYS = 14
# Sessions a week and slots a session by service level.
_WEEKLY = {"special_needs": (1, 2), "expert": (2, 3), "specialist": (3, 4), "general": (4, 6)}
_CAPACITY = {"special_needs": (8, 10), "expert": (15, 20), "specialist": (20, 28),
             "general": (30, 40)}


def _templates(db: Session, h: Hospital, rng: random.Random) -> int:
    rooms = list(db.scalars(select(Location).where(Location.hospital_id == h.id,
                                                   Location.kind == "room")))
    count = 0
    doctors = db.scalars(select(Practitioner).where(Practitioner.hospital_id == h.id)
                         .order_by(Practitioner.id))
    weekdays = list(h.clinic_weekdays)
    with_account = staff_service.linked_practitioner_ids(db, h.id)
    for doc in doctors:
        lo, hi = _WEEKLY[doc.service_level]
        picks = rng.sample([(d, s) for d in weekdays for s in (SessionOfDay.am, SessionOfDay.pm)],
                           k=min(rng.randint(lo, hi), 2 * len(weekdays)))
        if doc.id in with_account:
            # The demo doctor's console opens on a session of the day, whatever the day.
            picks = [(d, SessionOfDay.am) for d in weekdays]
        if h.level == "tertiary" and doc.service_level == "general" and rng.random() < 0.15:
            picks.append((rng.choice(weekdays[:5]), SessionOfDay.evening))
        room = rng.choice(rooms) if rooms else None
        for weekday, session in picks:
            capacity = rng.randint(*_CAPACITY[doc.service_level])
            span = {SessionOfDay.am: 210, SessionOfDay.pm: 180, SessionOfDay.evening: 150}
            db.add(ScheduleTemplate(
                hospital_id=h.id, department_id=doc.departments[0].id, practitioner_id=doc.id,
                location_id=room.id if room else None, weekday=weekday, session=session.value,
                start_time=service.SESSION_STARTS[session],
                slot_minutes=max(3, span[session] // capacity), capacity=capacity,
                service_level=doc.service_level))
            count += 1
    db.flush()
    return count


#: Active appointments the demo gives a patient a demo phone account acts for: a tester who
#: signs in can still book (BK-8 counts every active appointment against the limit).
SIGNED_IN_CAP = 2


def _book_some(db: Session, h: Hospital, patients: list[int], rng: random.Random,
               now: datetime, start: date, active: Counter[int], signed_in: set[int]) -> int:
    """Some released slots already taken, busier for experts and nearer days, each patient
    within the per-patient limits (``active``: their active appointments so far)."""
    if not patients:
        return 0
    limit = service.policy_for(db, h.id)[0].max_active_appointments
    slots = db.execute(
        select(Slot, service.Schedule.department_id, service.Schedule.day)
        .join(service.Schedule, service.Schedule.id == Slot.schedule_id)
        .where(service.Schedule.hospital_id == h.id, Slot.start_at > now)).all()
    rows, taken, used = [], [], set()
    for slot, department_id, day in slots:
        timer = PoolTimer(slot.release_at, slot.return_at,
                          Pool(slot.return_pool) if slot.return_pool else None)
        pool = effective_pool(Pool(slot.pool), timer, now)
        if pool is None:
            continue
        closeness = 1 - (day - start).days / DAYS
        if rng.random() > 0.2 + 0.5 * closeness:
            continue
        patient_id = rng.choice(patients)
        cap = min(limit, SIGNED_IN_CAP) if patient_id in signed_in else limit
        if (patient_id, department_id, day) in used or active[patient_id] >= cap:
            continue
        used.add((patient_id, department_id, day))
        active[patient_id] += 1
        taken.append(slot.id)
        rows.append({"slot_id": slot.id, "schedule_id": slot.schedule_id,
                     "patient_id": patient_id, "hospital_id": h.id,
                     "department_id": department_id, "day": day, "start_at": slot.start_at,
                     "pool": pool.value, "channel": rng.choice(["wechat", "app", "web", "phone"]),
                     "status": "booked", "booked_by": "demo", "created_at": now,
                     "booked_at": now, "cancel_reason": ""})
    return _insert(db, taken, rows)


def _insert(db: Session, taken: list[int], rows: list[dict[str, Any]]) -> int:
    """Mark the slots taken and insert their appointments; returns how many."""
    for i in range(0, len(taken), 500):
        db.execute(update(Slot).where(Slot.id.in_(taken[i:i + 500])).values(status="booked"),
                   execution_options={"synchronize_session": False})
    if rows:
        db.execute(insert(Appointment), rows)
    return len(rows)


#: Days of visits already over that the demo gives, for the indicators to count.
HISTORY_DAYS = 7
_ONLINE = ("wechat", "app", "web", "phone")
_CHANNEL = {Pool.window: ("window",), Pool.priority: ("window",), Pool.clinic: ("clinic",),
            Pool.referral: ("referral",), Pool.online: _ONLINE}


def _history(db: Session, h: Hospital, patients: list[int], rng: random.Random,
             today: date, created: datetime) -> int:
    """The past week's visits (国考 22 and 23, BK-6, BK-9): booked days ahead on every
    channel or registered at the window that morning, checked in early or late and called
    in, a few no-shows. Only patients without a phone account take part, so that no demo
    sign-in meets a no-show's booking restriction."""
    if not patients:
        return 0
    tz = get_settings().tz
    service.generate_from_templates(db, hospital=h, start=today - timedelta(days=HISTORY_DAYS),
                                    end=today - timedelta(days=1), now=created)
    slots = db.execute(
        select(Slot, service.Schedule.department_id, service.Schedule.day)
        .join(service.Schedule, service.Schedule.id == Slot.schedule_id)
        .where(service.Schedule.hospital_id == h.id,
               service.Schedule.day >= today - timedelta(days=HISTORY_DAYS),
               service.Schedule.day < today).order_by(Slot.id)).all()
    rows, taken, used = [], [], set()
    for slot, department_id, day in slots:
        patient_id = rng.choice(patients)
        if rng.random() > 0.6 or (patient_id, department_id, day) in used:
            continue
        used.add((patient_id, department_id, day))
        taken.append(slot.id)
        channel = rng.choice(_CHANNEL[Pool(slot.pool)])
        opens = datetime.combine(day, time(7), tzinfo=tz)
        if channel == "window" and rng.random() < 0.7:  # registered on site that morning
            booked_at = max(opens, slot.start_at - timedelta(minutes=rng.randint(5, 90)))
        else:
            booked_at = slot.start_at - timedelta(days=rng.randint(1, 7),
                                                  minutes=rng.randint(0, 600))
        row = {"slot_id": slot.id, "schedule_id": slot.schedule_id, "patient_id": patient_id,
               "hospital_id": h.id, "department_id": department_id, "day": day,
               "start_at": slot.start_at, "pool": slot.pool, "channel": channel,
               "booked_by": "demo", "created_at": booked_at, "booked_at": booked_at,
               "cancel_reason": "", "status": "fulfilled", "checked_in_at": None,
               "called_at": None, "noshow_at": None, "penalty_event": None}
        if rng.random() < 0.06:
            row |= {"status": "noshow", "noshow_at": slot.start_at,
                    "penalty_event": "noshow"}
        else:
            arrived = max(booked_at, slot.start_at + timedelta(minutes=rng.randint(-25, 20)))
            row |= {"checked_in_at": arrived, "called_at": max(arrived, slot.start_at)
                    + timedelta(minutes=rng.randint(0, 25))}
        rows.append(row)
    return _insert(db, taken, rows)


#: The name a demo hospital's provisional ruling carries on the calendar page.
PROVISIONAL = "演示数据：该年官方日历尚未导入，按本院门诊日推定"


def rule_unknown_days(db: Session, h: Hospital, start: date, end: date) -> int:
    """The demo hospital's own ruling for the dates nobody has data for (a year whose
    official calendar ``chinesecalendar`` does not know yet): its clinic weekdays open, as
    a hospital admin would set them until the region imports the official year. A real
    hospital's unknown dates stay unknown (``org.calendar``): only the demo guesses, and
    says so on each date. Returns how many dates it ruled."""
    unknown = [d.day for d in calendar.clinic_days(db, h, start, end)
               if d.status is DayStatus.unknown and d.day.isoweekday() in h.clinic_weekdays]
    for day in unknown:
        calendar.set_override(db, day=day, kind=OverrideKind.open, name=PROVISIONAL,
                              hospital=h, source="demo")
    return len(unknown)


def load_scheduling(db: Session, region: Region, seed: int) -> dict[str, int]:
    """Templates for every doctor, the next 14 days of sessions (the demo rules the dates
    of a year without official data, ``rule_unknown_days``), and existing bookings."""
    rng = random.Random(seed * 13 + 4)
    tz = get_settings().tz
    now = utcnow()
    today = now.astimezone(tz).date()
    created = datetime.combine(today - timedelta(days=30), time(8), tzinfo=tz)
    patients = list(db.scalars(select(Patient.id).order_by(Patient.id)))
    signed_in = set(db.scalars(select(FamilyMember.patient_id)))
    without_account = [p for p in patients if p not in signed_in][:3000]
    active: Counter[int] = Counter()
    counts = {"schedule_templates": 0, "schedules": 0, "appointments": 0, "past_visits": 0}
    for h in region.hospitals:
        counts["schedule_templates"] += _templates(db, h, rng)
        rule_unknown_days(db, h, today, today + timedelta(days=DAYS - 1))
        report = service.generate_from_templates(db, hospital=h, start=today,
                                                 end=today + timedelta(days=DAYS - 1),
                                                 now=created)
        counts["schedules"] += report.created
        counts["appointments"] += _book_some(db, h, patients, rng, now, today, active,
                                             signed_in)
        counts["past_visits"] += _history(db, h, without_account, rng, today, created)
    return counts
