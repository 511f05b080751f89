"""Pure organisation rules: search keys from pinyin, and whether a date is a clinic day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pypinyin import Style, lazy_pinyin

TITLE_LABELS = {
    "chief_physician": "主任医师",
    "associate_chief_physician": "副主任医师",
    "attending_physician": "主治医师",
    "resident_physician": "住院医师",
}
SERVICE_LEVEL_LABELS = {
    "general": "普通门诊",
    "specialist": "专科门诊",
    "expert": "专家门诊",
    "special_needs": "特需门诊",
}
LEVEL_LABELS = {"primary": "一级", "secondary": "二级", "tertiary": "三级"}
KIND_LABELS = {
    "general": "综合医院",
    "specialist": "专科医院",
    "tcm": "中医医院",
    "primary_care": "基层医疗机构",
}
WEEKDAY_LABELS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


def search_keys(*names: str) -> str:
    """Lower-case keys that let a patient find a name by pinyin initials or full pinyin.

    ``search_keys("心血管内科", "心内科")`` holds ``xxgnk``, ``xinxueguanneike``, ``xnk``, ...
    """
    keys: list[str] = []
    for name in names:
        if not name:
            continue
        initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore"))
        full = "".join(lazy_pinyin(name, errors="ignore"))
        for key in (name.lower(), initials.lower(), full.lower()):
            if key and key not in keys:
                keys.append(key)
    return " ".join(keys)


def normalise_query(query: str) -> str:
    return "".join(query.split()).lower()


class DayStatus(StrEnum):
    clinic = "clinic"
    closed = "closed"
    #: The statutory calendar for that year is not known yet and nobody has ruled on the date.
    unknown = "unknown"


class OverrideKind(StrEnum):
    holiday = "holiday"
    workday = "workday"
    closed = "closed"
    open = "open"


OVERRIDE_KIND_LABELS = {
    OverrideKind.holiday: "法定节假日",
    OverrideKind.workday: "调休上班",
    OverrideKind.closed: "停诊",
    OverrideKind.open: "开诊",
}


@dataclass(frozen=True)
class StatutoryDay:
    """What the national calendar says of a date: holiday, adjusted working day, or neither."""

    is_holiday: bool
    is_adjusted_workday: bool
    name: str = ""


@dataclass(frozen=True)
class Override:
    kind: OverrideKind
    name: str
    scope: str  # "hospital" or "region"


@dataclass(frozen=True)
class ClinicDay:
    day: date
    status: DayStatus
    reason: str
    source: str  # hospital, region, statutory, weekday, none

    @property
    def is_clinic_day(self) -> bool | None:
        if self.status is DayStatus.unknown:
            return None
        return self.status is DayStatus.clinic


def decide_clinic_day(
    day: date,
    *,
    clinic_weekdays: list[int],
    holiday_clinics: bool,
    hospital_override: Override | None,
    region_override: Override | None,
    statutory: StatutoryDay | None,
) -> ClinicDay:
    """Decide whether ``day`` is a clinic day, most specific ruling first.

    A hospital's own ruling beats the region's, which beats the statutory calendar; where
    the statutory calendar has no data for the year and nobody has ruled, the answer is
    ``unknown``: never a guess from the weekday.
    """
    for override in (hospital_override, region_override):
        if override is not None:
            return _from_kind(day, override.kind, override.name, override.scope, holiday_clinics)
    if statutory is None:
        return ClinicDay(
            day, DayStatus.unknown,
            f"{day.year}年法定节假日安排尚无数据，请导入官方日历或逐日设置", "none",
        )
    if statutory.is_holiday and statutory.name:
        return _from_kind(day, OverrideKind.holiday, statutory.name, "statutory", holiday_clinics)
    if statutory.is_adjusted_workday:
        return _from_kind(day, OverrideKind.workday, statutory.name, "statutory", holiday_clinics)
    weekday = WEEKDAY_LABELS[day.isoweekday() - 1]
    if day.isoweekday() in clinic_weekdays:
        return ClinicDay(day, DayStatus.clinic, f"{weekday}，本院门诊日", "weekday")
    return ClinicDay(day, DayStatus.closed, f"{weekday}，本院不开门诊", "weekday")


def _from_kind(day: date, kind: OverrideKind, name: str, source: str,
               holiday_clinics: bool) -> ClinicDay:
    who = {"hospital": "本院设定", "region": "区域设定", "statutory": "国家法定"}[source]
    label = f"（{name}）" if name else ""
    if kind is OverrideKind.open:
        return ClinicDay(day, DayStatus.clinic, f"{who}开诊{label}", source)
    if kind is OverrideKind.closed:
        return ClinicDay(day, DayStatus.closed, f"{who}停诊{label}", source)
    if kind is OverrideKind.workday:
        return ClinicDay(day, DayStatus.clinic, f"{who}调休上班日{label}", source)
    if holiday_clinics:
        return ClinicDay(day, DayStatus.clinic, f"{who}节假日{label}，本院节假日照常开诊", source)
    return ClinicDay(day, DayStatus.closed, f"{who}节假日{label}，门诊休息", source)
