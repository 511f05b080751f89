"""An independent check of itineraries against every hard rule of the catalogue.

Written apart from the planner and the greedy baseline on purpose: it shares only the data
types, none of their constraint code, so a mistake in one is caught by the other. Tests and
the benchmark run it over every plan; the service runs it before a plan is booked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onetrip.exams.rules import (
    FOLLOWUP_MINUTES,
    Catalogue,
    FreeSlot,
    Itinerary,
    PatientRequest,
    Site,
    Visit,
    fast_from,
)

Flag = Callable[[str, str], None]


@dataclass(frozen=True)
class Violation:
    patient_id: int
    rule: str
    message: str


def _minutes(a: datetime, b: datetime) -> float:
    """Minutes from ``a`` to ``b`` (negative when ``b`` is earlier)."""
    return (b - a).total_seconds() / 60


def validate(cat: Catalogue, site: Site, tz: ZoneInfo, requests: Sequence[PatientRequest],
             itineraries: Sequence[Itinerary], slots: Sequence[FreeSlot]) -> list[Violation]:
    """Every broken hard rule in these itineraries (empty when they are all sound)."""
    by_id = {s.slot_id: s for s in slots}
    use: Counter[int] = Counter()
    out: list[Violation] = []
    reqs = {r.patient_id: r for r in requests}
    for it in itineraries:
        req = reqs[it.patient_id]
        out += _one(cat, site, tz, req, it, by_id)
        use.update(v.slot_id for v in it.visits)
    for slot_id, n in use.items():
        if slot_id in by_id and n > by_id[slot_id].free:
            left = by_id[slot_id].free
            out.append(Violation(0, "capacity", f"号源{slot_id}安排了{n}人，只剩{left}个位置"))
    return out


def _one(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest, it: Itinerary,
         slots: dict[int, FreeSlot]) -> list[Violation]:
    bad: list[Violation] = []

    def flag(rule: str, message: str) -> None:
        bad.append(Violation(req.patient_id, rule, message))

    ordered = {o.order_id: o for o in req.orders}
    seen = Counter(v.order_id for v in it.visits)
    for order_id, n in seen.items():
        if order_id not in ordered:
            flag("unknown_order", f"医嘱{order_id}不属于该患者")
        elif n > 1:
            flag("duplicate", f"医嘱{order_id}安排了{n}次")
    for order_id in ordered:
        if order_id not in seen and order_id not in it.unplanned:
            flag("dropped", f"医嘱{order_id}既未安排也未列为未安排")
    for v in it.visits:
        _unary(cat, tz, req, v, slots.get(v.slot_id), flag)
    # The exams booked already count as placed: each new one keeps the rules with them.
    held = {id(v) for v in req.held}
    visits = sorted([*it.visits, *req.held], key=lambda v: v.start)
    for i, a in enumerate(visits):
        for b in visits[i + 1:]:
            if id(a) not in held or id(b) not in held:
                _pair(cat, site, tz, a, b, flag)
    if it.followup_at is not None and req.followup is not None:
        _followup(cat, site, req, it, flag)
    elif it.followup_at is not None:
        flag("followup", "没有复诊需求却安排了复诊")
    return bad


def _unary(cat: Catalogue, tz: ZoneInfo, req: PatientRequest, v: Visit, slot: FreeSlot | None,
           flag: Flag) -> None:
    exam = cat.exams.get(v.exam_code)
    if exam is None:
        flag("unknown_exam", f"检查{v.exam_code}不在目录中")
        return
    if slot is None or slot.start != v.start or slot.resource_id != v.resource_id:
        flag("slot", f"{exam.name}的号源不存在或时间不符")
        return
    if exam.code not in slot.exam_codes:
        flag("resource", f"{exam.name}安排在不能做该检查的设备上")
    if slot.minutes < exam.minutes or _minutes(v.start, v.end) < exam.minutes:
        flag("duration", f"{exam.name}的号源时长不足")
    if _minutes(v.end, v.busy_until) < exam.after_minutes:
        flag("aftercare", f"{exam.name}后的留观时间不足")
    if v.start < req.not_before:
        flag("past", f"{exam.name}安排在可预约时间之前")
    local = v.start.astimezone(tz)
    told = req.not_before.astimezone(tz)
    needs = []
    if _minutes(fast_from(told, req.facts), v.start) < exam.fasting_hours * 60:
        needs.append(f"禁食{exam.fasting_hours}小时")
    if _minutes(told, v.start) < exam.drink_before_minutes:
        needs.append(f"提前{exam.drink_before_minutes}分钟饮水")
    if exam.bowel_prep and local.date() <= told.date():
        needs.append("前一天肠道准备")
    if (local.date() - told.date()).days < exam.prep_days:
        needs.append(f"提前{exam.prep_days}天准备")
    if needs:
        flag("preparation", f"{exam.name}距预约时间太近，来不及{'、'.join(needs)}")
    if exam.latest_start is not None and (local.hour, local.minute) > (
            exam.latest_start.hour, exam.latest_start.minute):
        flag("latest_start", f"{exam.name}须在{exam.latest_start:%H:%M}前开始")
    f = req.facts
    risky = f.age >= exam.creatinine_age or f.renal_disease or f.diabetes
    if exam.creatinine and risky:
        got = f.creatinine_on
        if got is None or got > local.date() or (local.date() - got).days > exam.creatinine_days:
            flag("creatinine", f"{exam.name}需要{exam.creatinine_days}天内的肌酐结果")


def _pair(cat: Catalogue, site: Site, tz: ZoneInfo, a: Visit, b: Visit, flag: Flag) -> None:
    """``a`` starts no later than ``b``."""
    ea, eb = cat.exams.get(a.exam_code), cat.exams.get(b.exam_code)
    if ea is None or eb is None:
        return
    walk = 0 if a.building == b.building else site.walk.get(
        (a.building, b.building), site.walk.get((b.building, a.building), site.default_walk))
    if _minutes(a.busy_until, b.start) < walk:
        flag("overlap", f"{ea.name}与{eb.name}时间重叠或不够步行{walk}分钟")
    for r in cat.orders:
        if (r.first, r.second) == (a.exam_code, b.exam_code):
            if _minutes(a.end, b.start) < r.gap_minutes:
                flag("gap", f"{ea.name}与{eb.name}应间隔{r.gap_minutes}分钟")
        elif (r.first, r.second) == (b.exam_code, a.exam_code) and (
                # the rule's second came first: allowed only with the reverse gap
                r.reverse_minutes is None or _minutes(a.end, b.start) < r.reverse_minutes):
            flag("order", f"应先做{eb.name}再做{ea.name}：{r.reason}")
    if a.start.astimezone(tz).date() != b.start.astimezone(tz).date():
        return
    for ban in cat.bans:
        if {ban.first, ban.second} == {a.exam_code, b.exam_code}:
            flag("same_day", f"{ea.name}与{eb.name}不能同日：{ban.reason}")
    if eb.fasting and ea.breaks_fast:
        flag("fasting", f"{ea.name}会打破空腹，应先做{eb.name}")
    if ea.fasting and eb.breaks_fast and _minutes(a.end, b.start) < eb.drink_before_minutes:
        flag("fasting", f"{eb.name}前需饮水{eb.drink_before_minutes}分钟，须在{ea.name}之后")
    if ea.last_of_day and not eb.last_of_day:
        flag("last_of_day", f"{ea.name}（镇静）后当日不再安排{eb.name}")


def _followup(cat: Catalogue, site: Site, req: PatientRequest, it: Itinerary,
              flag: Flag) -> None:
    f, at = req.followup, it.followup_at
    assert f is not None and at is not None
    if not f.opens <= at <= f.closes:
        flag("followup", "复诊时间不在门诊时段内")
    if f.starts is not None and at not in f.starts:
        flag("followup", "复诊时间没有可预约的门诊号源")
    needed = {o.order_id for o in req.orders if o.needed_for_followup}
    for v in [*it.visits, *req.held]:
        exam = cat.exams.get(v.exam_code)
        if exam is None:
            continue
        if v.order_id in needed and v.end + timedelta(minutes=exam.result_minutes) > at:
            flag("followup", f"复诊时{exam.name}的结果尚未出来")
        walk = 0 if v.building == f.building else site.walk.get(
            (v.building, f.building), site.walk.get((f.building, v.building), site.default_walk))
        end = at + timedelta(minutes=FOLLOWUP_MINUTES)
        if not (_minutes(v.busy_until, at) >= walk or _minutes(end, v.start) >= walk):
            flag("followup", f"复诊与{exam.name}时间冲突")
