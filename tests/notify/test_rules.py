"""Pure rules of the reminders (RM-1), with plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from onetrip.notify.rules import (
    ReminderPolicy,
    in_quiet_hours,
    next_attempt,
    respect_quiet_hours,
    scheduled_reminders,
)
from onetrip.notify.templates import TEMPLATES, render

TZ = ZoneInfo("Asia/Shanghai")
P = ReminderPolicy()
D = date(2026, 12, 14)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def test_rm1_quiet_hours_run_from_22_to_7_across_midnight() -> None:
    assert in_quiet_hours(at(D, 22), P, TZ) and in_quiet_hours(at(D, 6, 59), P, TZ)
    assert not in_quiet_hours(at(D, 7), P, TZ) and not in_quiet_hours(at(D, 21, 59), P, TZ)
    assert in_quiet_hours(at(D, 23).astimezone(UTC), P, TZ)


def test_rm1_an_sms_in_quiet_hours_waits_for_seven_oclock() -> None:
    later_visit = D + timedelta(days=3)
    assert respect_quiet_hours(at(D, 23, 30), channel="sms", event_day=later_visit,
                               policy=P, tz=TZ) == at(D + timedelta(days=1), 7)
    assert respect_quiet_hours(at(D, 5), channel="sms", event_day=later_visit,
                               policy=P, tz=TZ) == at(D, 7)


def test_rm1_same_day_events_and_other_channels_ignore_quiet_hours() -> None:
    assert respect_quiet_hours(at(D, 6), channel="sms", event_day=D, policy=P, tz=TZ) == at(D, 6)
    assert respect_quiet_hours(at(D, 23), channel="inbox", event_day=None,
                               policy=P, tz=TZ) == at(D, 23)


def test_rm1_quiet_hours_are_configurable() -> None:
    p = ReminderPolicy(quiet_start=time(21), quiet_end=time(8))
    assert respect_quiet_hours(at(D, 21, 30), channel="sms", event_day=None, policy=p,
                               tz=TZ) == at(D + timedelta(days=1), 8)


def test_rm1_reminders_the_day_before_at_the_configured_hour_and_one_hour_before() -> None:
    due = scheduled_reminders(start_at=at(D, 9), booked_at=at(D - timedelta(days=3), 10),
                              policy=ReminderPolicy(day_before_hour=19), tz=TZ)
    assert due == {"day_before": at(D - timedelta(days=1), 19), "hour_before": at(D, 8)}


def test_rm1_reminders_already_past_at_booking_are_not_queued() -> None:
    due = scheduled_reminders(start_at=at(D, 9), booked_at=at(D, 7, 30), policy=P, tz=TZ)
    assert due == {"hour_before": at(D, 8)}
    assert scheduled_reminders(start_at=at(D, 9), booked_at=at(D, 8, 30), policy=P, tz=TZ) == {}


def test_rm1_retries_back_off_exponentially_up_to_the_last_attempt() -> None:
    now = at(D, 10)
    gaps = [next_attempt(n, now, P) for n in range(1, 6)]
    assert [g - now for g in gaps[:4] if g] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert gaps[4] is None
    capped = ReminderPolicy(max_attempts=50)
    assert next_attempt(30, now, capped) == now + capped.backoff_cap


def test_rm1_every_template_renders_in_chinese_with_the_signature() -> None:
    values = {"time": "12月14日 08:00", "department": "心血管内科", "doctor": "王医生",
              "place": "门诊楼3楼", "checkin_minutes": 15, "cancel_deadline": "12月11日 16:00",
              "reason": "", "offer": "近期无同级别号源，挂号费将退还。",
              "expires": "12月14日 07:30", "exam": "腹部超声", "instruction": "检查前8小时禁食",
              "report": "血常规", "ticket": "A012", "amount": "25.00", "item": "挂号费"}
    for name in TEMPLATES:
        text = render(name, values)
        assert text.startswith("【最多跑一次】") and "{" not in text
    assert "12月11日 16:00前" in render("booking_confirmed", values)
