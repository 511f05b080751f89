"""Pure booking rules: pools and their timers, limits, penalties, queue order. No session.

Times are aware datetimes; a clinic day's local times are turned into instants with the
hospital's time zone by :func:`at_local`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Pool(StrEnum):
    window = "window"
    online = "online"
    referral = "referral"
    priority = "priority"
    clinic = "clinic"


class Channel(StrEnum):
    web = "web"
    wechat = "wechat"
    app = "app"
    phone = "phone"
    kiosk = "kiosk"
    window = "window"
    clinic = "clinic"
    referral = "referral"


class SessionOfDay(StrEnum):
    am = "am"
    pm = "pm"
    evening = "evening"


class AppointmentStatus(StrEnum):
    held = "held"
    booked = "booked"
    arrived = "arrived"
    fulfilled = "fulfilled"
    cancelled = "cancelled"
    noshow = "noshow"
    expired = "expired"


#: Statuses that occupy a slot and count against a patient's limits.
ACTIVE_STATUSES = (AppointmentStatus.held, AppointmentStatus.booked, AppointmentStatus.arrived)

POOL_LABELS = {Pool.window: "窗口号", Pool.online: "线上号", Pool.referral: "转诊号",
               Pool.priority: "优先号", Pool.clinic: "诊间号"}
CHANNEL_LABELS = {Channel.web: "网站", Channel.wechat: "微信", Channel.app: "App",
                  Channel.phone: "电话", Channel.kiosk: "自助机", Channel.window: "窗口",
                  Channel.clinic: "诊间", Channel.referral: "转诊"}
SESSION_LABELS = {SessionOfDay.am: "上午", SessionOfDay.pm: "下午", SessionOfDay.evening: "晚间"}

# BK-1: every channel books; each reaches the pools meant for it. On-site channels (window,
# kiosk) also take same-day window registrations; referral reaches the reserved pool (BK-4);
# the window clerk serves the priority quota for the elderly, disabled and service members
# (BK-5); doctors book follow-ups from the clinic pool.
CHANNEL_POOLS: dict[Channel, frozenset[Pool]] = {
    Channel.web: frozenset({Pool.online}),
    Channel.wechat: frozenset({Pool.online}),
    Channel.app: frozenset({Pool.online}),
    Channel.phone: frozenset({Pool.online}),
    Channel.kiosk: frozenset({Pool.online, Pool.window}),
    Channel.window: frozenset({Pool.online, Pool.window, Pool.priority}),
    Channel.clinic: frozenset({Pool.online, Pool.clinic}),
    Channel.referral: frozenset({Pool.online, Pool.referral}),
}
#: The channels each role may book through (BK-1, BK-8): patients and proxies online for
#: themselves and their family; clerks at the window or phone; kiosks as kiosks; doctors
#: in clinic, or by referral from a primary-care clinic of the same medical alliance.
ROLE_CHANNELS: dict[str, frozenset[Channel]] = {
    "patient": frozenset({Channel.web, Channel.wechat, Channel.app}),
    "proxy": frozenset({Channel.web, Channel.wechat, Channel.app}),
    "window": frozenset({Channel.window, Channel.phone}),
    "kiosk": frozenset({Channel.kiosk}),
    "doctor": frozenset({Channel.clinic, Channel.referral}),
    "hospital_admin": frozenset({Channel.window}),
    # The exam booking centre books the follow-up a doctor ordered with the exams (EX-2).
    "exam_centre": frozenset({Channel.clinic}),
}

#: BK-6: a session another doctor has taken over (替诊) stays open for booking under the
#: substitute's name; only a stopped one (停诊) is closed.
BOOKABLE_SCHEDULE_STATUSES = ("open", "substituted")

#: Channels that count as online for the penalty rules (a restriction stops these only).
ONLINE_CHANNELS = frozenset({Channel.web, Channel.wechat, Channel.app, Channel.phone})


class PolicyInvalid(ValueError):
    """A pool policy that breaks a policy floor (message in Chinese); ``field`` names the
    setting at fault so that a form can show the message beside it."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class PoolPolicy(BaseModel):
    """One hospital's pool shares and timers. Defaults follow SX2018 and NB2016."""

    model_config = ConfigDict(frozen=True)

    # BK-2: at least 80% of slots bookable online (online + referral pools).
    online_share: float = Field(default=0.85, ge=0, le=1)
    # BK-4: at least 40% of online slots first reserved for referrals from primary care.
    referral_share_of_online: float = Field(default=0.4, ge=0, le=1)
    # BK-5: priority quota; in-clinic follow-up quota. The window pool gets the rest.
    priority_share: float = Field(default=0.05, ge=0, le=1)
    clinic_share: float = Field(default=0.05, ge=0, le=1)
    # BK-4: referral pool released 10 days ahead; unused slots return 3 days after release.
    referral_release_days: int = Field(default=10, ge=1, le=90)
    referral_return_days: int = Field(default=3, ge=1, le=30)
    online_release_days: int = Field(default=7, ge=1, le=90)
    online_release_time: time = time(7, 0)
    same_day_open_time: time = time(7, 0)
    # Advance booking for tomorrow closes at this hour today; same-day registration opens
    # at same_day_open_time on the day.
    next_day_cutoff: time = time(20, 0)
    cancel_deadline_time: time = time(16, 0)
    hold_minutes: int = Field(default=5, ge=1, le=60)
    fair_window_seconds: float = Field(default=2.0, ge=0, le=60)
    waitlist_offer_minutes: int = Field(default=15, ge=1, le=240)
    late_after_minutes: int = Field(default=30, ge=0, le=240)
    check_in_opens_minutes: int = Field(default=120, ge=0, le=24 * 60)
    max_active_appointments: int = Field(default=5, ge=1, le=50)
    slot_minutes: int = Field(default=6, ge=1, le=120)

    @model_validator(mode="after")
    def _floors(self) -> PoolPolicy:
        problems = floor_problems(self)
        if problems:
            setting, message = next(iter(problems.items()))
            raise PolicyInvalid(message, setting)
        return self


def floor_problems(policy: PoolPolicy) -> dict[str, str]:
    """Every policy floor the shares and timers break, by the setting at fault (empty when
    none), so that a form can show each one beside its field at once."""
    out = {}
    if policy.online_share < 0.8:
        out["online_share"] = "线上可预约号源不得少于80%（BK-2）"
    if policy.referral_share_of_online < 0.4:
        out["referral_share_of_online"] = "转诊预留号源不得少于线上号源的40%（BK-4）"
    if policy.online_share + policy.priority_share + policy.clinic_share > 1 + 1e-9:
        out["priority_share"] = "各号池比例之和不得超过100%"
    if policy.referral_return_days > policy.referral_release_days:
        out["referral_return_days"] = "转诊号回收天数不得超过提前放号天数"
    return out


def at_local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant of a local wall-clock time on ``day``."""
    return datetime.combine(day, clock, tzinfo=tz)


def allocate_pools(capacity: int, policy: PoolPolicy) -> list[Pool]:
    """Pools for each position of a session, spread evenly through it.

    Shares round up in favour of the policy floors: online (with referral) first, then
    priority and clinic; the window pool takes what is left.
    """
    if capacity <= 0:
        return []
    online_total = min(capacity, math.ceil(capacity * policy.online_share - 1e-9))
    referral = min(online_total, math.ceil(online_total * policy.referral_share_of_online - 1e-9))
    rest = capacity - online_total
    priority = min(rest, round(capacity * policy.priority_share))
    clinic = min(rest - priority, round(capacity * policy.clinic_share))
    counts = {Pool.referral: referral, Pool.online: online_total - referral,
              Pool.priority: priority, Pool.clinic: clinic,
              Pool.window: rest - priority - clinic}
    # Smooth interleaving: at each position take the pool furthest behind its share.
    order = list(counts)
    placed = dict.fromkeys(counts, 0)
    out: list[Pool] = []
    for i in range(1, capacity + 1):
        best, best_gap = order[0], -1.0
        for p in order:
            if placed[p] < counts[p]:
                gap = counts[p] * i / capacity - placed[p]
                if gap > best_gap + 1e-12:
                    best, best_gap = p, gap
        placed[best] += 1
        out.append(best)
    return out


@dataclass(frozen=True)
class PoolTimer:
    """When a slot's pool opens, and when (and into which pool) it returns if unused."""

    release_at: datetime
    return_at: datetime | None = None
    return_pool: Pool | None = None


def pool_timer(pool: Pool, day: date, policy: PoolPolicy, tz: ZoneInfo,
               created_at: datetime) -> PoolTimer:
    online_release = at_local(day - timedelta(days=policy.online_release_days),
                              policy.online_release_time, tz)
    same_day = at_local(day, policy.same_day_open_time, tz)
    if pool is Pool.referral:
        release = at_local(day - timedelta(days=policy.referral_release_days),
                           policy.online_release_time, tz)
        # BK-4: what is unused 3 days after release returns to the shared online pool, but
        # not before that pool opens (a policy may open it later than day-7).
        back = max(release + timedelta(days=policy.referral_return_days), online_release)
        return PoolTimer(release, back, Pool.online)
    if pool is Pool.online:
        return PoolTimer(online_release)
    if pool is Pool.priority:
        return PoolTimer(online_release, same_day, Pool.window)
    if pool is Pool.clinic:
        return PoolTimer(min(created_at, online_release), same_day, Pool.window)
    return PoolTimer(same_day)


def effective_pool(pool: Pool, timer: PoolTimer, now: datetime) -> Pool | None:
    """The pool a slot is in at ``now``; None before it is released."""
    if timer.return_at is not None and timer.return_pool is not None and now >= timer.return_at:
        return timer.return_pool
    if now < timer.release_at:
        return None
    return pool


@dataclass(frozen=True)
class BookingWindow:
    """A clinic day's booking calendar: advance booking, the overnight pause, same day."""

    advance_closes_at: datetime
    same_day_opens_at: datetime


def booking_window(day: date, policy: PoolPolicy, tz: ZoneInfo) -> BookingWindow:
    return BookingWindow(
        advance_closes_at=at_local(day - timedelta(days=1), policy.next_day_cutoff, tz),
        same_day_opens_at=at_local(day, policy.same_day_open_time, tz),
    )


def booking_paused(window: BookingWindow, now: datetime) -> bool:
    """Between the next-day cutoff and the same-day opening nothing can be booked."""
    return window.advance_closes_at <= now < window.same_day_opens_at


def cancel_deadline(previous_working_day: date, policy: PoolPolicy, tz: ZoneInfo) -> datetime:
    """Cancellation is free until 16:00 (configurable) of the working day before the visit."""
    return at_local(previous_working_day, policy.cancel_deadline_time, tz)


def in_opening_rush(release_at: datetime, now: datetime, seconds: float) -> bool:
    """Whether a request falls in the fair window right after a pool opens."""
    return release_at <= now < release_at + timedelta(seconds=seconds)


# --- no-show and cancellation penalties (BK-6) --------------------------------------------


class PenaltyEvent(StrEnum):
    noshow = "noshow"
    late_cancellation = "late_cancellation"
    same_day_refund = "same_day_refund"


#: The longest restriction a penalty rule may give (ten years; past it, date arithmetic on
#: the restriction's end overflows).
MAX_PENALTY_DAYS = 3650


class PenaltyRule(BaseModel):
    """A parameterised penalty: which events count, over what window, with what escalation.

    ``thresholds`` maps an event count to restriction days; the highest reached applies, so
    ``{1: 30, 2: 60, 3: 90}`` escalates 30/60/90 days and ``{3: 90}`` restricts for 90 days
    at the third event. ``window_days=None`` counts within the calendar year.
    """

    model_config = ConfigDict(frozen=True)

    name: str = "默认爽约规则"
    counted: frozenset[PenaltyEvent] = frozenset({PenaltyEvent.noshow})
    window_days: int | None = Field(default=None, ge=1, le=3650)
    thresholds: dict[int, int] = Field(default_factory=lambda: {1: 30, 2: 60, 3: 90})
    scope: str = Field(default="hospital", pattern="^(hospital|region)$")

    @model_validator(mode="after")
    def _sane(self) -> PenaltyRule:
        if not self.thresholds or any(not 1 <= k <= 1000 or not 1 <= v <= MAX_PENALTY_DAYS
                                      for k, v in self.thresholds.items()):
            raise PolicyInvalid(f"处罚阈值须为正整数，限制天数不超过{MAX_PENALTY_DAYS}天")
        if not self.counted:
            raise PolicyInvalid("至少计入一种失约行为")
        return self


BEIJING_RULE = PenaltyRule()
ROLLING_90_RULE = PenaltyRule(name="90天内3次爽约限制90天", window_days=90, thresholds={3: 90})


@dataclass(frozen=True)
class Restriction:
    until: datetime
    count: int
    rule: str
    reason: str = field(default="")


def restriction_for(events: Iterable[tuple[PenaltyEvent, datetime]], rule: PenaltyRule,
                    now: datetime, tz: ZoneInfo) -> Restriction | None:
    """The restriction in force at ``now`` from a patient's history, or None.

    Every counted event is weighed with the events before it inside the window (calendar
    year of the event, or the rolling ``window_days``); each event whose running count
    reaches a threshold restricts from that event for the threshold's days. The latest end
    still in the future applies.
    """
    counted = sorted(at for kind, at in events if kind in rule.counted)
    best: Restriction | None = None
    for i, at in enumerate(counted):
        if rule.window_days is None:
            year = at.astimezone(tz).year
            n = sum(1 for x in counted[: i + 1] if x.astimezone(tz).year == year)
        else:
            start = at - timedelta(days=rule.window_days)
            n = sum(1 for x in counted[: i + 1] if x > start)
        reached = [k for k in rule.thresholds if k <= n]
        if not reached:
            continue
        days = rule.thresholds[max(reached)]
        until = at + timedelta(days=days)
        if until > now and (best is None or until > best.until):
            local = until.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            best = Restriction(until, n, rule.name,
                               f"第{n}次失约，{days}天内不能线上预约（至{local}）")
    return best


# --- queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    appointment_id: int
    slot_start: datetime
    checked_in_at: datetime
    #: Called once and passed over (过号): they had their turn.
    passed_over: bool = False

    def late(self, late_after: timedelta) -> bool:
        """Behind everyone on time: checked in past the allowance, or passed over once."""
        return self.passed_over or self.checked_in_at > self.slot_start + late_after


def queue_order(arrivals: Sequence[Arrival], late_after: timedelta) -> list[Arrival]:
    """Call order: on-time patients by slot time; late arrivals behind them, by arrival.

    A patient who checks in more than ``late_after`` after the slot start loses the slot's
    place (the common late-arrival rule) and is called after everyone who came on time.
    """
    def key(a: Arrival) -> tuple[int, datetime, int]:
        return (1, a.checked_in_at, a.appointment_id) if a.late(late_after) else (
            0, a.slot_start, a.appointment_id)

    return sorted(arrivals, key=key)


def estimated_wait(position: int, minutes_per_patient: float, *, now: datetime | None = None,
                   starts_at: datetime | None = None,
                   slot_start: datetime | None = None) -> timedelta:
    """Patients ahead times the session's minutes per patient, plus, before the session
    begins (``now`` before ``starts_at``), the time until the doctor starts (BK-11); and
    never less than the time until the patient's own slot (``slot_start``, for one who came
    on time): the earlier slots' patients still to come are called before them."""
    wait = timedelta(minutes=max(0, position) * minutes_per_patient)
    if now is not None and starts_at is not None and now < starts_at:
        wait += starts_at - now
    if now is not None and slot_start is not None:
        wait = max(wait, slot_start - now)
    return wait
