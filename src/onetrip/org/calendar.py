"""Working calendar: is a date a clinic day for a hospital, and why.

The statutory calendar (holidays and adjusted working days, 调休) comes from
``chinesecalendar``; each year's official schedule is published by the State Council late
in the year before, so the library can lag. A region admin then imports the new year
(`onetrip calendar import`, or the admin page); a hospital may rule on single dates too.
A date nobody has data for is reported as ``unknown``, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, partial
from typing import Any, cast

import chinese_calendar
from chinese_calendar.constants import Holiday
from sqlalchemy import Table, bindparam, or_, select
from sqlalchemy.orm import Session

from onetrip.db import among_bound, read_built
from onetrip.errors import InvalidInput, NotFound
from onetrip.org.models import CalendarOverride, Hospital
from onetrip.org.rules import (
    ClinicDay,
    DayStatus,
    Override,
    OverrideKind,
    StatutoryDay,
    decide_clinic_day,
)

_HOLIDAY_ZH = {h.value: h.chinese for h in Holiday}
_KIND_WORDS = {
    "holiday": OverrideKind.holiday, "节假日": OverrideKind.holiday,
    "法定节假日": OverrideKind.holiday, "休": OverrideKind.holiday,
    "workday": OverrideKind.workday, "调休上班": OverrideKind.workday,
    "上班": OverrideKind.workday, "班": OverrideKind.workday,
    "closed": OverrideKind.closed, "停诊": OverrideKind.closed,
    "open": OverrideKind.open, "开诊": OverrideKind.open,
}


#: The years a ruling may name: those the calendar page shows (and can delete a ruling of).
YEARS = range(2000, 2101)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class CalendarDayInvalid(InvalidInput):
    code = "calendar_day_invalid"
    message = "日期应写作YYYY-MM-DD（如2027-01-01），且在2000年至2100年之间"


def parse_day(raw: str) -> date | None:
    """A day written YYYY-MM-DD in ``YEARS``, or None (a number, an ISO week or the basic
    form 20270101, which ``date.fromisoformat`` also reads, are not what a person means)."""
    if not _DAY.fullmatch(raw):
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if day.year in YEARS else None


class CalendarImportInvalid(InvalidInput):
    code = "calendar_import_invalid"
    message = "日历文件有误，未导入任何日期"


class OverrideNotFound(NotFound):
    code = "calendar_override_not_found"
    message = "未找到该日历设定"


def statutory_day(day: date) -> StatutoryDay | None:
    """What ``chinesecalendar`` says of ``day``; None when it has no data for that year."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    zh = _HOLIDAY_ZH.get(name, name or "")
    if name is None:
        return StatutoryDay(is_holiday=False, is_adjusted_workday=False)
    return StatutoryDay(is_holiday=is_holiday, is_adjusted_workday=not is_holiday, name=zh)


def _statutory_working(d: date) -> bool:
    """A working day by the national calendar (Monday to Friday where it has no data)."""
    statutory = statutory_day(d)
    if statutory is None:
        return d.isoweekday() <= 5
    if statutory.is_adjusted_workday:
        return True
    return not statutory.is_holiday and d.isoweekday() <= 5


def _walk_back(day: date, working: Callable[[date], bool]) -> date:
    d = day - timedelta(days=1)
    for _ in range(30):
        if working(d):
            return d
        d -= timedelta(days=1)
    return day - timedelta(days=1)


@lru_cache(maxsize=1024)
def previous_working_day(day: date) -> date:
    """The last statutory working day before ``day`` (Monday to Friday where no data).
    Remembered per day; ``previous_working_days`` also weighs imported rulings."""
    return _walk_back(day, _statutory_working)


_WORKING_KINDS = (OverrideKind.holiday.value, OverrideKind.workday.value)


def previous_working_days(db: Session, wanted: Iterable[tuple[int, date]],
                          ) -> dict[tuple[int, date], date]:
    """The working day before each (hospital id, date), one read for all of them.

    The holidays and adjusted working days a hospital or its region imported come first
    (the official schedule of a year the library does not know yet), then the statutory
    calendar. A hospital's closed or open ruling is about its clinics, not working days.
    """
    wanted = set(wanted)
    if not wanted:
        return {}
    days = [day for _hid, day in wanted]
    rows = read_built(db, _rulings_statement, {
        "ids": sorted({hid for hid, _day in wanted}), "kinds": list(_WORKING_KINDS),
        "first": min(days) - timedelta(days=30), "last": max(days)}).all()
    if not rows:
        return {(hid, day): previous_working_day(day) for hid, day in wanted}
    own: dict[tuple[int, date], bool] = {}
    region: dict[tuple[int, date], bool] = {}
    for hid, own_ruling, day, kind in rows:
        (own if own_ruling is not None else region)[(hid, day)] = kind == "workday"

    def working(hid: int, d: date) -> bool:
        for ruling in (own.get((hid, d)), region.get((hid, d))):
            if ruling is not None:
                return ruling
        return _statutory_working(d)

    return {(hid, day): _walk_back(day, partial(working, hid)) for hid, day in wanted}


@lru_cache(maxsize=4)
def _rulings_statement(dialect: str) -> Any:
    """The holidays and working days ruled for the hospitals ``ids`` (their own and their
    region's) from ``first`` up to, not including, ``last``: built once, as it runs for
    every batch of bookings (the cancellation deadline of their confirmations)."""
    h, o = cast(Table, Hospital.__table__).c, cast(Table, CalendarOverride.__table__).c
    return select(h.id, o.hospital_id, o.day, o.kind).join_from(
        cast(Table, Hospital.__table__), cast(Table, CalendarOverride.__table__),
        or_(o.hospital_id == h.id, o.region_id == h.region_id)).where(
        among_bound(dialect, h.id, "ids"), among_bound(dialect, o.kind, "kinds"),
        o.day >= bindparam("first"), o.day < bindparam("last"))


def working_day_before(db: Session, hospital_id: int, day: date) -> date:
    """``previous_working_days`` for one hospital and date (BK-6 cancellation deadline)."""
    return previous_working_days(db, [(hospital_id, day)])[(hospital_id, day)]


def _overrides(db: Session, hospital: Hospital, start: date, end: date,
               ) -> tuple[dict[date, Override], dict[date, Override]]:
    rows = db.scalars(select(CalendarOverride).where(
        CalendarOverride.day >= start, CalendarOverride.day <= end,
        (CalendarOverride.hospital_id == hospital.id)
        | (CalendarOverride.region_id == hospital.region_id),
    ))
    own: dict[date, Override] = {}
    region: dict[date, Override] = {}
    for row in rows:
        if row.hospital_id is not None:
            own[row.day] = Override(OverrideKind(row.kind), row.name, "hospital")
        else:
            region[row.day] = Override(OverrideKind(row.kind), row.name, "region")
    return own, region


def clinic_days(db: Session, hospital: Hospital, start: date, end: date) -> list[ClinicDay]:
    """The ruling for every date from ``start`` to ``end`` inclusive."""
    if end < start:
        raise InvalidInput("结束日期早于开始日期")
    own, region = _overrides(db, hospital, start, end)
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [decide_clinic_day(
        day, clinic_weekdays=list(hospital.clinic_weekdays),
        holiday_clinics=hospital.holiday_clinics,
        hospital_override=own.get(day), region_override=region.get(day),
        statutory=statutory_day(day)) for day in days]


def clinic_day(db: Session, hospital: Hospital, day: date) -> ClinicDay:
    """Is ``day`` a clinic day for ``hospital``, and why."""
    return clinic_days(db, hospital, day, day)[0]


def years_without_data(db: Session, hospital: Hospital, years: list[int]) -> list[int]:
    """Years in which some date is ``unknown`` for this hospital (shown as a warning)."""
    return [y for y in years
            if any(d.status is DayStatus.unknown
                   for d in clinic_days(db, hospital, date(y, 1, 1), date(y, 12, 31)))]


def list_overrides(db: Session, *, hospital: Hospital | None = None,
                   region_id: int | None = None, year: int | None = None,
                   ) -> list[CalendarOverride]:
    stmt = select(CalendarOverride).order_by(CalendarOverride.day)
    if hospital is not None:
        stmt = stmt.where(CalendarOverride.hospital_id == hospital.id)
    if region_id is not None:
        stmt = stmt.where(CalendarOverride.region_id == region_id)
    if year is not None:
        stmt = stmt.where(CalendarOverride.day >= date(year, 1, 1),
                          CalendarOverride.day <= date(year, 12, 31))
    return list(db.scalars(stmt))


def set_override(db: Session, *, day: date, kind: OverrideKind, name: str = "",
                 hospital: Hospital | None = None, region_id: int | None = None,
                 source: str = "") -> CalendarOverride:
    """Rule on one date for a hospital or a region, replacing an earlier ruling."""
    if (hospital is None) == (region_id is None):
        raise InvalidInput("请指定医院或区域之一")
    if day.year not in YEARS:
        raise CalendarDayInvalid(detail={"day": day.isoformat()})
    hid = hospital.id if hospital is not None else None
    row = db.scalar(select(CalendarOverride).where(
        CalendarOverride.day == day,
        CalendarOverride.hospital_id == hid if hid is not None
        else CalendarOverride.region_id == region_id,
    ))
    if row is None:
        row = CalendarOverride(day=day, hospital_id=hid, region_id=region_id)
        db.add(row)
    row.kind = kind.value
    row.name = name.strip()[:100]
    row.source = source[:200]
    db.flush()
    return row


def delete_override(db: Session, *, override_id: int, hospital: Hospital,
                    include_region: bool = False) -> date:
    """Remove one ruling of ``hospital`` (or of its region, for regional admins).

    Returns the date it was for; raises OverrideNotFound for anybody else's ruling.
    """
    row = db.get(CalendarOverride, override_id)
    if row is None or not (row.hospital_id == hospital.id or (
        include_region and row.region_id == hospital.region_id
    )):
        raise OverrideNotFound(detail={"id": override_id})
    day = row.day
    db.delete(row)
    db.flush()
    return day


@dataclass(frozen=True)
class ImportLine:
    day: date
    kind: OverrideKind
    name: str


def parse_calendar_csv(text: str) -> list[ImportLine]:
    """Parse ``date,kind,name`` lines (kind: holiday/workday/closed/open or 休/班/停诊/开诊).

    Every error is collected with its line number; any error means nothing is imported.
    """
    lines: list[ImportLine] = []
    errors: list[dict[str, object]] = []
    seen: set[date] = set()
    if "\x00" in text:
        raise CalendarImportInvalid("文件中含有无效字符（NUL），未导入任何日期")
    try:
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as exc:  # a field past the module's limit (128 KB), a stray quote
        raise CalendarImportInvalid("文件无法按CSV读取（某一列过长或引号不成对），"
                                    "未导入任何日期") from exc
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and cells[0].lower() in {"date", "日期"}:
            continue
        if len(cells) < 2:
            errors.append({"line": lineno, "error": "每行至少需要日期和类型两列"})
            continue
        day = parse_day(cells[0])
        if day is None:
            errors.append({"line": lineno, "error": "日期应写作YYYY-MM-DD，在2000年至2100年"
                                                    f"之间：{cells[0]}"})
            continue
        kind = _KIND_WORDS.get(cells[1].lower())
        if kind is None:
            errors.append({"line": lineno, "error": f"未知类型：{cells[1]}"})
            continue
        if day in seen:
            errors.append({"line": lineno, "error": f"日期重复：{day}"})
            continue
        seen.add(day)
        lines.append(ImportLine(day, kind, cells[2] if len(cells) > 2 else ""))
    if errors:
        raise CalendarImportInvalid(detail=errors)
    if not lines:
        raise CalendarImportInvalid("日历文件中没有任何日期")
    return lines


def import_overrides(db: Session, text: str, *, hospital: Hospital | None = None,
                     region_id: int | None = None, source: str = "") -> int:
    """Import a calendar file for a hospital or region; all lines or none. Returns the count."""
    lines = parse_calendar_csv(text)
    for line in lines:
        set_override(db, day=line.day, kind=line.kind, name=line.name, hospital=hospital,
                     region_id=region_id, source=source)
    return len(lines)
