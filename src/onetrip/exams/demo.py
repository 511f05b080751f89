"""Demo exam centre: the packaged catalogue, the sample resources and their calendars for
the tertiary hospitals of 示范市, and a few patients' pending orders."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.exams import resources, sample, service
from onetrip.exams.catalogue import default_catalogue_data
from onetrip.exams.models import ExamOrder
from onetrip.exams.rules import age_on
from onetrip.identity.models import Patient
from onetrip.org.models import Hospital, Region

DAYS = 7
WOMEN_ONLY = frozenset({"us_gyn", "us_early_pregnancy"})
ORDERED_BY = "doctor:demo:门诊医生"


def set_up_hospital(db: Session, hospital: Hospital, *, start: datetime, days: int) -> int:
    """Catalogue, resources, walking times and ``days`` of calendar (a room whose exams
    need days of preparation at home, that many more); returns slots added."""
    service.install_catalogue(db, hospital_id=hospital.id, data=default_catalogue_data())
    cat = service.catalogue(db, hospital.id)
    for (a, b), minutes in sample.WALKS.items():
        resources.set_walk(db, hospital_id=hospital.id, a=a, b=b, minutes=minutes)
    tz = get_settings().tz
    first = start.astimezone(tz).date()
    added = 0
    for spec in sample.RESOURCES:
        res = resources.add_resource(
            db, hospital_id=hospital.id, code=spec.code, name=spec.name,
            building=spec.building, room=spec.room, exam_codes=spec.exam_codes,
            slot_minutes=spec.slot_minutes, capacity=spec.capacity,
            hours=[[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in spec.hours])
        ahead = resources.calendar_days(cat, spec.exam_codes, days)
        added += resources.open_calendar(db, resource=res, start=first,
                                         end=first + timedelta(days=ahead - 1))
    return added


def load_exams(db: Session, region: Region, seed: int) -> dict[str, int]:
    """Demo step: the exam centres of the tertiary hospitals, and orders waiting to be
    planned for some demo patients at 示范市人民医院."""
    rng = random.Random(f"exams-{seed}")
    now = utcnow()
    slots = 0
    tertiary = [h for h in region.hospitals if h.level == "tertiary"]
    for h in tertiary:
        slots += set_up_hospital(db, h, start=now, days=DAYS)
    lead = next((h for h in tertiary if h.code == "sfsrmyy"), None)
    orders = 0
    if lead is not None:
        tz = get_settings().tz
        today = now.astimezone(tz).date()
        tomorrow = today + timedelta(days=1)
        adults = [p for p in db.scalars(select(Patient).order_by(Patient.id).limit(60))
                  if 18 <= age_on(p.birth_date, today) <= 85][:12]
        for patient in adults:
            pid = patient.id
            # the pelvic and early-pregnancy ultrasounds for women of child-bearing age only
            women = patient.gender == "female" and age_on(patient.birth_date, today) <= 49
            bundle = rng.choice([b for b in sample.BUNDLES
                                 if women or WOMEN_ONLY.isdisjoint(b)])
            followup = rng.random() < 0.5
            for code in bundle:
                db.add(ExamOrder(
                    hospital_id=lead.id, patient_id=pid, exam_code=code, ordered_by=ORDERED_BY,
                    ordered_at=now, creatinine_on=now.astimezone(tz).date() - timedelta(days=3),
                    needed_for_followup=followup and code != "blood_routine",
                    followup_opens=datetime.combine(tomorrow, time(13, 30), tzinfo=tz)
                    if followup else None,
                    followup_closes=datetime.combine(tomorrow, time(16, 45), tzinfo=tz)
                    if followup else None,
                    followup_building=sample.OUTPATIENT if followup else ""))
                orders += 1
        db.flush()
    return {"exam_slots": slots, "exam_orders": orders}
