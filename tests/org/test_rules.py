"""Pure organisation rules: pinyin search keys and clinic-day decisions."""

from __future__ import annotations

from datetime import date

from onetrip.org.rules import (
    ClinicDay,
    DayStatus,
    Override,
    OverrideKind,
    StatutoryDay,
    decide_clinic_day,
    search_keys,
)

WEEKDAYS = [1, 2, 3, 4, 5]
PLAIN = StatutoryDay(is_holiday=False, is_adjusted_workday=False)


def decide(day: date, **kw: object) -> ClinicDay:
    args: dict[str, object] = {"clinic_weekdays": WEEKDAYS, "holiday_clinics": False,
                               "hospital_override": None, "region_override": None,
                               "statutory": PLAIN}
    args.update(kw)
    return decide_clinic_day(day, **args)


def test_search_keys_hold_initials_full_pinyin_and_aliases() -> None:
    keys = search_keys("心血管内科", "心内科").split()
    assert "xxgnk" in keys and "xnk" in keys and "xinxueguanneike" in keys
    assert "心血管内科" in keys


def test_search_keys_use_phrase_readings_for_heteronyms() -> None:
    # 重 reads zhong in 危重症 (not chong): pypinyin's phrase dictionary, not a char table.
    keys = search_keys("呼吸与危重症医学科").split()
    assert "hxywzzyxk" in keys and "huxiyuweizhongzhengyixueke" in keys


def test_weekday_clinic_and_weekend_closed() -> None:
    monday, saturday = date(2026, 11, 23), date(2026, 11, 28)
    assert decide(monday).status is DayStatus.clinic
    assert decide(saturday).status is DayStatus.closed
    assert decide(saturday, clinic_weekdays=[1, 2, 3, 4, 5, 6]).status is DayStatus.clinic


def test_statutory_holiday_closes_unless_hospital_keeps_holiday_clinics() -> None:
    national_day = StatutoryDay(is_holiday=True, is_adjusted_workday=False, name="国庆节")
    closed = decide(date(2026, 10, 1), statutory=national_day)
    assert closed.status is DayStatus.closed and "国庆节" in closed.reason
    open_ = decide(date(2026, 10, 1), statutory=national_day, holiday_clinics=True)
    assert open_.status is DayStatus.clinic


def test_adjusted_working_saturday_is_a_clinic_day() -> None:
    tiaoxiu = StatutoryDay(is_holiday=False, is_adjusted_workday=True, name="春节")
    day = decide(date(2026, 2, 14), statutory=tiaoxiu)
    assert day.status is DayStatus.clinic and "调休" in day.reason


def test_year_without_data_is_unknown_never_guessed() -> None:
    day = decide(date(2027, 1, 4), statutory=None)
    assert day.status is DayStatus.unknown
    assert day.is_clinic_day is None
    assert "2027" in day.reason


def test_hospital_ruling_beats_region_which_beats_statutory() -> None:
    region = Override(OverrideKind.holiday, "元旦", "region")
    hospital = Override(OverrideKind.open, "义诊", "hospital")
    day = date(2027, 1, 1)
    assert decide(day, statutory=None, region_override=region).status is DayStatus.closed
    both = decide(day, statutory=None, region_override=region, hospital_override=hospital)
    assert both.status is DayStatus.clinic and both.source == "hospital"
    closed = decide(date(2026, 11, 23), hospital_override=Override(OverrideKind.closed, "院庆",
                                                                   "hospital"))
    assert closed.status is DayStatus.closed
