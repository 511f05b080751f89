"""Exam rooms and devices with their calendars (EX-3) and the walking times between
buildings, as the exam centre keeps them; what the planner reads of them is
``service.free_slots`` and ``service.site``. Services take the session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from itertools import pairwise

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.exams import rules as R
from onetrip.exams.errors import CalendarOverlap, ResourceInvalid, ResourceNotFound, UnknownExam
from onetrip.exams.models import ExamResource, ExamSlot, ExamWalk
from onetrip.exams.service import catalogue, check_days, record
from onetrip.identity.service import Principal
from onetrip.org import calendar as org_calendar
from onetrip.org.models import Hospital


def _hours(hours: Sequence[Sequence[str]]) -> list[tuple[time, time]]:
    try:
        spans = sorted((time.fromisoformat(a), time.fromisoformat(b)) for a, b in hours)
    except (ValueError, TypeError) as exc:
        raise ResourceInvalid("开放时间格式应为HH:MM") from exc
    for (a, b), nxt in zip(spans, [*spans[1:], None], strict=True):
        if a >= b:
            raise ResourceInvalid(f"开放时间{a:%H:%M}-{b:%H:%M}的结束早于开始")
        if nxt is not None and nxt[0] < b:
            raise CalendarOverlap(f"开放时间{a:%H:%M}-{b:%H:%M}与{nxt[0]:%H:%M}起的时段重叠")
    return spans


def add_resource(db: Session, *, hospital_id: int, code: str, name: str, building: str,
                 exam_codes: Sequence[str], slot_minutes: int, capacity: int,
                 hours: Sequence[Sequence[str]], room: str = "",
                 by: Principal | None = None) -> ExamResource:
    """A room or device with its opening hours and the exams it does (EX-3: ultrasound, CT,
    MRI and endoscopy in slots of 30 minutes or finer)."""
    cat = catalogue(db, hospital_id)
    missing = [c for c in exam_codes if c not in cat.exams]
    if missing:
        raise UnknownExam(detail={"exam_codes": missing})
    if not exam_codes or capacity < 1:
        raise ResourceInvalid("须指定可做的检查、正的号源时长和容量")
    _check_slot_length(cat, exam_codes, slot_minutes)
    if db.scalar(select(ExamResource.id).where(ExamResource.hospital_id == hospital_id,
                                               ExamResource.code == code)) is not None:
        raise ResourceInvalid(f"设备编码{code}已存在", detail={"code": code})
    spans = _hours(hours)
    row = ExamResource(hospital_id=hospital_id, code=code, name=name, building=building,
                       room=room, exam_codes=list(exam_codes), slot_minutes=slot_minutes,
                       capacity=capacity, hours=[[a.strftime("%H:%M"), b.strftime("%H:%M")]
                                                 for a, b in spans])
    db.add(row)
    db.flush()
    record(db, by, "exam_resource.add", code=code, exams=list(exam_codes))
    return row


def _check_slot_length(cat: R.Catalogue, exam_codes: Sequence[str], minutes: int) -> None:
    """EX-3: ultrasound, CT, MRI and endoscopy in slots of 30 minutes or finer; no slot
    shorter than an exam the room does."""
    if minutes < 1:
        raise ResourceInvalid("号源时长须为正整数（分钟）")
    for c in exam_codes:
        exam = cat.exams.get(c)
        if exam is None:
            continue  # taken out of the catalogue since: the room no longer does it
        if exam.modality in R.EX3_MODALITIES and minutes > R.EX3_MAX_SLOT_MINUTES:
            raise ResourceInvalid(f"{exam.name}须按30分钟或更短的时段预约（EX-3）")
        if exam.minutes > minutes:
            raise ResourceInvalid(f"{exam.name}需要{exam.minutes}分钟，长于号源时长")


def set_walk(db: Session, *, hospital_id: int, a: str, b: str, minutes: int) -> None:
    """Walking minutes between two buildings (either direction)."""
    if minutes < 0 or a == b:
        raise ResourceInvalid("步行时间须为非负整数，且两栋楼不能相同")
    db.execute(delete(ExamWalk).where(ExamWalk.hospital_id == hospital_id,
                                      ExamWalk.from_building.in_((a, b)),
                                      ExamWalk.to_building.in_((a, b))))
    db.add(ExamWalk(hospital_id=hospital_id, from_building=a, to_building=b, minutes=minutes))
    db.flush()


def access_resource(db: Session, resource_id: int, hospital_id: int) -> ExamResource:
    row = db.get(ExamResource, resource_id)
    if row is None or row.hospital_id != hospital_id:
        raise ResourceNotFound(detail={"resource_id": resource_id})
    return row


def add_slots(db: Session, *, resource: ExamResource, starts: Sequence[datetime],
              minutes: int | None = None, capacity: int | None = None) -> list[ExamSlot]:
    """Slots on a resource's calendar; any two overlapping (new or with existing ones), a
    slot too long for EX-3 or too short for an exam of the room, are refused and nothing
    is added."""
    tz = get_settings().tz
    if any(s.tzinfo is None for s in starts):
        raise ResourceInvalid("号源开始时间须带时区")
    check_days(s.date() for s in starts)  # in the zone given: before any conversion
    if minutes is not None:
        _check_slot_length(catalogue(db, resource.hospital_id), resource.exam_codes, minutes)
    if capacity is not None and capacity < 1:
        raise ResourceInvalid("号源容量须为正整数")
    length = timedelta(minutes=minutes or resource.slot_minutes)
    new = sorted(starts)
    if not new:
        return []
    existing = list(db.execute(select(ExamSlot.start_at, ExamSlot.end_at).where(
        ExamSlot.resource_id == resource.id, ExamSlot.start_at < new[-1] + length,
        ExamSlot.end_at > new[0])))
    spans = sorted([(s, s + length) for s in new] + [(a, b) for a, b in existing])
    for (_a, b), (c, _d) in pairwise(spans):
        if c < b:
            raise CalendarOverlap(
                f"{resource.name}{c.astimezone(tz):%m-%d %H:%M}的号源与其他号源时段重叠",
                detail={"resource": resource.code, "at": c.astimezone(tz).isoformat()})
    rows = [ExamSlot(resource_id=resource.id, hospital_id=resource.hospital_id,
                     day=s.astimezone(tz).date(), start_at=s, end_at=s + length,
                     capacity=capacity or resource.capacity) for s in new]
    db.add_all(rows)
    db.flush()
    return rows


def calendar_days(cat: R.Catalogue, exam_codes: Sequence[str], days: int) -> int:
    """How many days of a room's calendar to open so that ``days`` of planning remain for
    each of its exams after its days of preparation at home (a thyroid scan's two weeks)."""
    return days + R.longest_prep(cat, exam_codes)


def open_calendar(db: Session, *, resource: ExamResource, start: date, end: date) -> int:
    """Slots for every clinic day from ``start`` to ``end`` in the opening hours; days that
    already have slots are left as they are. Returns the number of slots added."""
    check_days((start, end))
    tz = get_settings().tz
    hospital = db.get_one(Hospital, resource.hospital_id)
    have = set(db.scalars(select(ExamSlot.day).where(
        ExamSlot.resource_id == resource.id, ExamSlot.day >= start, ExamSlot.day <= end)))
    starts = []
    step = timedelta(minutes=resource.slot_minutes)
    for cd in org_calendar.clinic_days(db, hospital, start, end):
        if cd.day in have or cd.is_clinic_day is False:
            continue
        for a, b in _hours(resource.hours):
            at = datetime.combine(cd.day, a, tzinfo=tz)
            close = datetime.combine(cd.day, b, tzinfo=tz)
            while at + step <= close:
                starts.append(at)
                at += step
    return len(add_slots(db, resource=resource, starts=starts))
