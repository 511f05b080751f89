"""Pure booking rules with a fake clock (BK-2, BK-4, BK-5, BK-6, BK-11)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from onetrip.scheduling.rules import (
    BEIJING_RULE,
    ROLLING_90_RULE,
    Arrival,
    PenaltyEvent,
    PenaltyRule,
    Pool,
    PoolPolicy,
    allocate_pools,
    at_local,
    booking_paused,
    booking_window,
    effective_pool,
    in_opening_rush,
    pool_timer,
    queue_order,
    restriction_for,
)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 14)
POLICY = PoolPolicy()


def local(d: date, h: int, m: int = 0) -> datetime:
    return at_local(d, time(h, m), TZ)


def test_bk2_policy_with_less_than_80_percent_online_is_refused() -> None:
    with pytest.raises(ValueError, match="80%"):
        PoolPolicy(online_share=0.79)


def test_bk4_policy_with_less_than_40_percent_referral_is_refused() -> None:
    with pytest.raises(ValueError, match="40%"):
        PoolPolicy(referral_share_of_online=0.39)


@pytest.mark.parametrize("thresholds", [{1: 3_000_000}, {1: 0}, {0: 30}, {10_000: 30}, {}])
def test_bk6_a_penalty_rule_past_its_bounds_is_refused(thresholds: dict[int, int]) -> None:
    """A restriction of millions of days was stored, then every page that worked out a
    restricted patient's end date overflowed."""
    with pytest.raises(ValueError, match="处罚阈值"):
        PenaltyRule(thresholds=thresholds)
    assert PenaltyRule(thresholds={3: 3650}).thresholds == {3: 3650}


@pytest.mark.parametrize("capacity", [1, 5, 10, 20, 33, 50])
def test_allocation_meets_the_floors_for_any_capacity(capacity: int) -> None:
    pools = Counter(allocate_pools(capacity, POLICY))
    online = pools[Pool.online] + pools[Pool.referral]
    assert sum(pools.values()) == capacity
    assert online >= 0.8 * capacity
    assert pools[Pool.referral] >= 0.4 * online


def test_referral_slots_are_spread_through_the_session() -> None:
    pools = allocate_pools(20, POLICY)
    first_half = pools[:10].count(Pool.referral)
    second_half = pools[10:].count(Pool.referral)
    assert abs(first_half - second_half) <= 1


def test_bk4_referral_pool_opens_ten_days_ahead_and_returns_three_days_later() -> None:
    timer = pool_timer(Pool.referral, DAY, POLICY, TZ, created_at=local(DAY, 0) - timedelta(30))
    release = local(DAY - timedelta(days=10), 7)
    assert effective_pool(Pool.referral, timer, release - timedelta(minutes=1)) is None
    assert effective_pool(Pool.referral, timer, release) is Pool.referral
    back = release + timedelta(days=3)
    assert effective_pool(Pool.referral, timer, back - timedelta(seconds=1)) is Pool.referral
    assert effective_pool(Pool.referral, timer, back) is Pool.online


def test_bk4_unused_referral_slots_never_reach_the_online_pool_before_it_opens() -> None:
    """With the online pool released 3 days ahead, referral slots unused since day-10 stay
    with the referrals until day-3 07:00, when every online slot opens (not at day-7)."""
    late_online = PoolPolicy(online_release_days=3)
    timer = pool_timer(Pool.referral, DAY, late_online, TZ,
                       created_at=local(DAY, 0) - timedelta(30))
    online = local(DAY - timedelta(days=3), 7)
    assert effective_pool(Pool.referral, timer, local(DAY - timedelta(days=7), 7)) \
        is Pool.referral
    assert effective_pool(Pool.referral, timer, online - timedelta(seconds=1)) is Pool.referral
    assert effective_pool(Pool.referral, timer, online) is Pool.online


def test_online_pool_opens_seven_days_ahead_at_seven() -> None:
    timer = pool_timer(Pool.online, DAY, POLICY, TZ, created_at=local(DAY, 0) - timedelta(30))
    assert effective_pool(Pool.online, timer, local(DAY - timedelta(days=7), 6, 59)) is None
    assert effective_pool(Pool.online, timer, local(DAY - timedelta(days=7), 7)) is Pool.online


def test_window_pool_opens_on_the_day_and_priority_falls_back_to_it() -> None:
    created = local(DAY, 0) - timedelta(days=30)
    window = pool_timer(Pool.window, DAY, POLICY, TZ, created)
    assert effective_pool(Pool.window, window, local(DAY, 6, 59)) is None
    assert effective_pool(Pool.window, window, local(DAY, 7)) is Pool.window
    priority = pool_timer(Pool.priority, DAY, POLICY, TZ, created)
    assert effective_pool(Pool.priority, priority, local(DAY, 6)) is Pool.priority
    assert effective_pool(Pool.priority, priority, local(DAY, 7)) is Pool.window


def test_advance_booking_pauses_overnight_before_the_clinic_day() -> None:
    window = booking_window(DAY, POLICY, TZ)
    assert not booking_paused(window, local(DAY - timedelta(days=1), 19, 59))
    assert booking_paused(window, local(DAY - timedelta(days=1), 20))
    assert booking_paused(window, local(DAY, 6, 59))
    assert not booking_paused(window, local(DAY, 7))


def test_opening_rush_window() -> None:
    release = local(DAY, 7)
    assert in_opening_rush(release, release + timedelta(seconds=1.9), 2)
    assert not in_opening_rush(release, release + timedelta(seconds=2), 2)
    assert not in_opening_rush(release, release - timedelta(seconds=1), 2)


def noshows(*days: date) -> list[tuple[PenaltyEvent, datetime]]:
    return [(PenaltyEvent.noshow, local(d, 9)) for d in days]


def test_bk6_beijing_rule_escalates_30_60_90_within_a_calendar_year() -> None:
    first = date(2026, 3, 1)
    r = restriction_for(noshows(first), BEIJING_RULE, local(first, 10), TZ)
    assert r is not None and r.until == local(first, 9) + timedelta(days=30)
    second = date(2026, 6, 1)
    r = restriction_for(noshows(first, second), BEIJING_RULE, local(second, 10), TZ)
    assert r is not None and r.until == local(second, 9) + timedelta(days=60) and r.count == 2
    third, fourth = date(2026, 9, 1), date(2026, 11, 1)
    r = restriction_for(noshows(first, second, third, fourth), BEIJING_RULE,
                        local(fourth, 10), TZ)
    assert r is not None and r.until == local(fourth, 9) + timedelta(days=90)


def test_bk6_restriction_ends_and_a_new_year_starts_from_one() -> None:
    events = noshows(date(2026, 3, 1), date(2026, 6, 1))
    assert restriction_for(events, BEIJING_RULE, local(date(2026, 8, 1), 9), TZ) is None
    events += noshows(date(2027, 1, 5))
    r = restriction_for(events, BEIJING_RULE, local(date(2027, 1, 6), 9), TZ)
    assert r is not None and r.count == 1 and r.until == local(date(2027, 1, 5), 9) + timedelta(30)


def test_bk6_rolling_rule_three_noshows_in_90_days() -> None:
    two = noshows(date(2026, 1, 1), date(2026, 2, 1))
    assert restriction_for(two, ROLLING_90_RULE, local(date(2026, 2, 2), 9), TZ) is None
    spread = [*two, *noshows(date(2026, 4, 15))]  # 1 Jan is outside the 90 days of 15 Apr
    assert restriction_for(spread, ROLLING_90_RULE, local(date(2026, 4, 16), 9), TZ) is None
    close = [*two, *noshows(date(2026, 3, 1))]
    r = restriction_for(close, ROLLING_90_RULE, local(date(2026, 3, 2), 9), TZ)
    assert r is not None and r.until == local(date(2026, 3, 1), 9) + timedelta(days=90)


def test_only_counted_events_count() -> None:
    rule = PenaltyRule(counted=frozenset({PenaltyEvent.noshow, PenaltyEvent.late_cancellation}),
                       thresholds={2: 30})
    events = [(PenaltyEvent.late_cancellation, local(date(2026, 5, 1), 9)),
              (PenaltyEvent.same_day_refund, local(date(2026, 5, 2), 9))]
    assert restriction_for(events, rule, local(date(2026, 5, 3), 9), TZ) is None
    events.append((PenaltyEvent.noshow, local(date(2026, 5, 3), 9)))
    assert restriction_for(events, rule, local(date(2026, 5, 3), 10), TZ) is not None


def test_late_arrivals_are_called_after_everyone_on_time() -> None:
    start = local(DAY, 8)
    arrivals = [
        Arrival(1, start, start + timedelta(minutes=45)),          # late by 45
        Arrival(2, start + timedelta(minutes=6), start),            # early
        Arrival(3, start + timedelta(minutes=12), start + timedelta(minutes=20)),  # on time
    ]
    order = [a.appointment_id for a in queue_order(arrivals, timedelta(minutes=30))]
    assert order == [2, 3, 1]
