"""Working calendar against the real chinesecalendar data and stored rulings."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from onetrip.org import calendar
from onetrip.org.calendar import CalendarImportInvalid
from onetrip.org.models import CalendarOverride
from onetrip.org.rules import DayStatus, OverrideKind
from tests.factories import make_hospital


def test_national_day_and_spring_festival_tiaoxiu_from_chinesecalendar(db: Session) -> None:
    h = make_hospital(db, clinic_weekdays=[1, 2, 3, 4, 5])
    national = calendar.clinic_day(db, h, date(2026, 10, 1))
    assert national.status is DayStatus.closed and "国庆节" in national.reason
    # Saturday 14 Feb 2026 is a working day in lieu of the Spring Festival holiday.
    tiaoxiu = calendar.clinic_day(db, h, date(2026, 2, 14))
    assert tiaoxiu.status is DayStatus.clinic and "春节" in tiaoxiu.reason


def test_a_year_chinesecalendar_lacks_is_unknown_until_imported(db: Session) -> None:
    h = make_hospital(db)
    assert calendar.clinic_day(db, h, date(2027, 1, 1)).status is DayStatus.unknown
    assert 2027 in calendar.years_without_data(db, h, [2026, 2027])
    calendar.import_overrides(db, "date,kind,name\n2027-01-01,休,元旦\n2027-01-04,班,\n",
                              region_id=h.region_id)
    assert calendar.clinic_day(db, h, date(2027, 1, 1)).status is DayStatus.closed
    assert calendar.clinic_day(db, h, date(2027, 1, 4)).status is DayStatus.clinic
    # Dates nobody ruled on stay unknown.
    assert calendar.clinic_day(db, h, date(2027, 1, 5)).status is DayStatus.unknown


def test_hospital_override_replaces_its_earlier_ruling(db: Session) -> None:
    h = make_hospital(db)
    day = date(2026, 11, 23)
    calendar.set_override(db, day=day, kind=OverrideKind.closed, name="院庆", hospital=h)
    calendar.set_override(db, day=day, kind=OverrideKind.open, name="义诊", hospital=h)
    assert len(calendar.list_overrides(db, hospital=h)) == 1
    assert calendar.clinic_day(db, h, day).reason == "本院设定开诊（义诊）"


def test_an_import_with_any_bad_line_writes_nothing(db: Session) -> None:
    h = make_hospital(db)
    text = "2027-02-06,休,春节\n2027-02-30,休,不存在\n2027-02-07,请假,\n2027-02-06,班,\n"
    with pytest.raises(CalendarImportInvalid) as err:
        calendar.import_overrides(db, text, hospital=h)
    lines = [e["line"] for e in err.value.detail]
    assert lines == [2, 3, 4]
    assert db.query(CalendarOverride).filter_by(hospital_id=h.id).count() == 0


def test_hospital_cannot_delete_another_hospitals_ruling(db: Session) -> None:
    a = make_hospital(db)
    b = make_hospital(db, region=a.region)
    row = calendar.set_override(db, day=date(2026, 12, 1), kind=OverrideKind.closed, hospital=a)
    with pytest.raises(calendar.OverrideNotFound):
        calendar.delete_override(db, override_id=row.id, hospital=b)
    assert calendar.delete_override(db, override_id=row.id, hospital=a) == date(2026, 12, 1)
