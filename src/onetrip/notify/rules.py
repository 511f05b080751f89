"""Pure rules of the reminders: when a message goes out, and how retries back off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ReminderPolicy:
    """RM-1: when the scheduled reminders go out and when SMS stays quiet."""

    day_before_hour: int = 18
    hour_before: timedelta = timedelta(hours=1)
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)


def in_quiet_hours(moment: datetime, policy: ReminderPolicy, tz: ZoneInfo) -> bool:
    """RM-1: 22:00-07:00 local (the window may wrap past midnight)."""
    t = moment.astimezone(tz).time()
    if policy.quiet_start <= policy.quiet_end:
        return policy.quiet_start <= t < policy.quiet_end
    return t >= policy.quiet_start or t < policy.quiet_end


def respect_quiet_hours(send_at: datetime, *, channel: str, event_day: date | None,
                        policy: ReminderPolicy, tz: ZoneInfo) -> datetime:
    """RM-1: an SMS due in quiet hours waits until they end, unless it is about the same day
    it would be sent on (a same-day event cannot wait for the morning)."""
    if channel != "sms" or not in_quiet_hours(send_at, policy, tz):
        return send_at
    local = send_at.astimezone(tz)
    if event_day is not None and event_day == local.date():
        return send_at
    end_day = local.date() if local.time() < policy.quiet_end else local.date() + timedelta(1)
    return datetime.combine(end_day, policy.quiet_end, tzinfo=tz)


def day_before_at(visit_day: date, policy: ReminderPolicy, tz: ZoneInfo) -> datetime:
    """RM-1: the day-before reminder goes out at the configured local hour."""
    return datetime.combine(visit_day - timedelta(days=1), time(policy.day_before_hour),
                            tzinfo=tz)


def scheduled_reminders(*, start_at: datetime, booked_at: datetime, policy: ReminderPolicy,
                        tz: ZoneInfo) -> dict[str, datetime]:
    """RM-1: the reminders still ahead of a booking made at ``booked_at``, by template."""
    visit_day = start_at.astimezone(tz).date()
    out = {"day_before": day_before_at(visit_day, policy, tz),
           "hour_before": start_at - policy.hour_before}
    return {name: at for name, at in out.items() if booked_at < at < start_at}


def next_attempt(attempts: int, now: datetime, policy: ReminderPolicy) -> datetime | None:
    """RM-1: exponential backoff after ``attempts`` failures; None once they are used up."""
    if attempts >= policy.max_attempts:
        return None
    return now + min(policy.backoff_base * (2 ** (attempts - 1)), policy.backoff_cap)
