"""Pure exam rules: preparation, order between exams, one patient's day, channels.

No session. The catalogue (``catalogue.py``) gives the exams and the rules between pairs; the
planner, the greedy baseline and the service apply them through the functions here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from onetrip.exams.catalogue import Catalogue, ExamType

#: EX-3: ultrasound, CT, MRI and endoscopy are booked in slots of 30 minutes or finer.
EX3_MODALITIES = frozenset({"us", "ct", "mri", "endo"})
EX3_MAX_SLOT_MINUTES = 30
DEFAULT_WALK_MINUTES = 10
FOLLOWUP_MINUTES = 15


# --- the patient -------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFacts:
    """What the preparation rules need to know about a patient (from the doctor's order)."""

    age: int
    renal_disease: bool = False
    diabetes: bool = False
    creatinine_on: date | None = None
    #: Nothing eaten since then (asked by staff): the fast counts from there, not from
    #: when the patient is told.
    fasting_since: datetime | None = None


def longest_prep(cat: Catalogue, codes: Iterable[str]) -> int:
    """The most days of preparation at home among these exams (0 for none)."""
    return max((cat.exams[c].prep_days for c in codes if c in cat.exams), default=0)


def fast_from(told: datetime, facts: PatientFacts) -> datetime:
    """Since when the patient has fasted, as far as anyone knows: since they were told,
    or since they last ate if staff recorded that earlier."""
    return min(told, facts.fasting_since) if facts.fasting_since is not None else told


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def creatinine_needed(exam: ExamType, facts: PatientFacts) -> bool:
    """Iodine contrast needs a recent creatinine for the elderly, renal disease, diabetes."""
    return exam.creatinine and (facts.age >= exam.creatinine_age or facts.renal_disease
                                or facts.diabetes)


def creatinine_ok(exam: ExamType, facts: PatientFacts, day: date) -> bool:
    """Whether the exam may take place on ``day`` as far as the creatinine rule goes."""
    if not creatinine_needed(exam, facts):
        return True
    got = facts.creatinine_on
    return got is not None and got <= day and (day - got).days <= exam.creatinine_days


# --- resources, slots and a planned visit ---------------------------------------------------


@dataclass(frozen=True)
class FreeSlot:
    """A slot of an exam resource with room left (``free`` patients)."""

    slot_id: int
    resource_id: int
    exam_codes: frozenset[str]
    building: str
    start: datetime
    minutes: int
    free: int = 1


@dataclass(frozen=True)
class Site:
    """Walking minutes between the buildings of one hospital (symmetric)."""

    walk: Mapping[tuple[str, str], int] = field(default_factory=dict)
    default_walk: int = DEFAULT_WALK_MINUTES

    def walk_minutes(self, a: str, b: str) -> int:
        if a == b:
            return 0
        got = self.walk.get((a, b), self.walk.get((b, a)))
        return self.default_walk if got is None else got


@dataclass(frozen=True)
class OrderItem:
    order_id: int
    exam_code: str
    needed_for_followup: bool = False


@dataclass(frozen=True)
class FollowUp:
    """The outpatient follow-up the doctor needs the results for: a window and a building.
    ``starts``: the times a follow-up appointment can be booked at (free outpatient slots);
    None when it is a return visit under the day's registration, at any time in the window."""

    opens: datetime
    closes: datetime
    building: str
    starts: tuple[datetime, ...] | None = None

    def times(self) -> tuple[datetime, ...] | None:
        """The bookable start times inside the window, earliest first (None: any time)."""
        if self.starts is None:
            return None
        return tuple(sorted(t for t in self.starts if self.opens <= t <= self.closes))


@dataclass(frozen=True)
class PatientRequest:
    """One patient's orders to plan. ``held``: the exams the patient has booked already
    (at a kiosk, say): they stay, and every new exam keeps the rules with them."""

    patient_id: int
    facts: PatientFacts
    orders: tuple[OrderItem, ...]
    not_before: datetime
    followup: FollowUp | None = None
    held: tuple[Visit, ...] = ()


@dataclass(frozen=True)
class Visit:
    """One planned exam: the slot, and the patient's own time (exam plus aftercare)."""

    order_id: int
    exam_code: str
    slot_id: int
    resource_id: int
    building: str
    start: datetime
    end: datetime
    busy_until: datetime


def visit_for(slot: FreeSlot, order: OrderItem, exam: ExamType) -> Visit:
    end = slot.start + timedelta(minutes=max(slot.minutes, exam.minutes))
    return Visit(order.order_id, order.exam_code, slot.slot_id, slot.resource_id,
                 slot.building, slot.start, end, end + timedelta(minutes=exam.after_minutes))


@dataclass
class Itinerary:
    """A patient's plan: visits, the follow-up time, and orders that could not be placed."""

    patient_id: int
    visits: list[Visit]
    followup_at: datetime | None = None
    unplanned: list[int] = field(default_factory=list)

    def days(self, tz: ZoneInfo) -> list[date]:
        got = {v.start.astimezone(tz).date() for v in self.visits}
        if self.followup_at is not None:
            got.add(self.followup_at.astimezone(tz).date())
        return sorted(got)

    def trips(self, tz: ZoneInfo) -> int:
        return len(self.days(tz))

    def hospital_minutes(self, tz: ZoneInfo) -> int:
        """Minutes in hospital over all trips: first arrival to last leaving, each day."""
        spans: dict[date, tuple[datetime, datetime]] = {}
        items = [(v.start, v.busy_until) for v in self.visits]
        if self.followup_at is not None:
            items.append((self.followup_at,
                          self.followup_at + timedelta(minutes=FOLLOWUP_MINUTES)))
        for start, end in items:
            d = start.astimezone(tz).date()
            lo, hi = spans.get(d, (start, end))
            spans[d] = (min(lo, start), max(hi, end))
        return sum(int((hi - lo).total_seconds() // 60) for lo, hi in spans.values())


def ready_at(exam: ExamType, told: datetime, tz: ZoneInfo,
             fasted: datetime | None = None) -> datetime:
    """The earliest start that leaves the patient, told of the exam at ``told``, the time
    its preparation takes: the fasting hours from ``fasted`` (``fast_from``: whoever is
    told in the morning may have had breakfast), the drinking before a full bladder, bowel
    preparation, which takes the day before (never the day the patient is told), and the
    days of preparation at home (``prep_days``: told today, the exam is on that day after
    today at the soonest)."""
    at = max((fasted or told) + timedelta(hours=exam.fasting_hours),
             told + timedelta(minutes=exam.drink_before_minutes))
    days = max(exam.prep_days, 1 if exam.bowel_prep else 0)
    if days:
        first_day = told.astimezone(tz).date() + timedelta(days=days)
        at = max(at, datetime.combine(first_day, time(0, 0), tzinfo=tz))
    return at


def slot_allowed(exam: ExamType, slot: FreeSlot, facts: PatientFacts, not_before: datetime,
                 tz: ZoneInfo) -> bool:
    """The unary rules: the resource does the exam, after the time its preparation takes
    from ``not_before`` (when the patient is told), mornings only, creatinine."""
    local = slot.start.astimezone(tz)
    return (exam.code in slot.exam_codes and slot.free > 0
            and slot.start >= ready_at(exam, not_before, tz, fast_from(not_before, facts))
            and slot.minutes >= exam.minutes
            and (exam.latest_start is None or local.time() <= exam.latest_start)
            and creatinine_ok(exam, facts, local.date()))


def usable(cat: Catalogue, site: Site, tz: ZoneInfo, req: PatientRequest, item: OrderItem,
           slot: FreeSlot) -> bool:
    """Whether ``item`` may take ``slot``: the unary rules, and every pairwise rule with the
    exams the patient has booked already (they are fixed, so this depends on the slot
    alone)."""
    exam = cat.exams[item.exam_code]
    return slot_allowed(exam, slot, req.facts, req.not_before, tz) and (
        not req.held or fits_with(cat, site, tz, req.held, visit_for(slot, item, exam)))


def clear_of_held(f: FollowUp, held: Sequence[Visit], site: Site) -> FollowUp:
    """The follow-up at the times of its window that no booked exam (and the walk to or
    from it) takes; every five minutes when any time of the window would do."""
    if not held:
        return f
    times = f.times()
    if times is None:
        steps = int((f.closes - f.opens).total_seconds() // 300)
        times = tuple(f.opens + timedelta(minutes=5 * k) for k in range(steps + 1))
    length = timedelta(minutes=FOLLOWUP_MINUTES)

    def clear(t: datetime) -> bool:
        return all(v.busy_until + timedelta(minutes=site.walk_minutes(v.building, f.building))
                   <= t or t + length + timedelta(
                       minutes=site.walk_minutes(v.building, f.building)) <= v.start
                   for v in held)

    return FollowUp(f.opens, f.closes, f.building, tuple(t for t in times if clear(t)))


def clear_followup(req: PatientRequest, site: Site) -> PatientRequest:
    """The request with its follow-up kept clear of the exams booked already."""
    if req.followup is None or not req.held:
        return req
    return replace(req, followup=clear_of_held(req.followup, req.held, site))


def fits_with(cat: Catalogue, site: Site, tz: ZoneInfo, placed: Iterable[Visit],
              new: Visit) -> bool:
    """Whether ``new`` keeps every pairwise rule with the visits already placed."""
    a_exam = cat.exams[new.exam_code]
    for old in placed:
        b_exam = cat.exams[old.exam_code]
        same_day = new.start.astimezone(tz).date() == old.start.astimezone(tz).date()
        walk = site.walk_minutes(new.building, old.building)
        if not (new.busy_until + timedelta(minutes=walk) <= old.start
                or old.busy_until + timedelta(minutes=walk) <= new.start):
            return False
        for rule in cat.order_rules(new.exam_code, old.exam_code):
            first, second = (new, old) if rule.first == new.exam_code else (old, new)
            forward = first.end + timedelta(minutes=rule.gap_minutes) <= second.start
            backward = (rule.reverse_minutes is not None and second.end
                        + timedelta(minutes=rule.reverse_minutes) <= first.start)
            if not (forward or backward):
                return False
        if not same_day:
            continue
        if cat.banned_same_day(new.exam_code, old.exam_code):
            return False
        if not _fast_kept(a_exam, new, b_exam, old) or not _fast_kept(b_exam, old, a_exam, new):
            return False
        if a_exam.last_of_day and not b_exam.last_of_day and old.start > new.start:
            return False
        if b_exam.last_of_day and not a_exam.last_of_day and new.start > old.start:
            return False
    return True


def _fast_kept(f_exam: ExamType, f: Visit, b_exam: ExamType, b: Visit) -> bool:
    """Fasting exams first, then what breaks the fast (drinking, barium), on one day."""
    if not f_exam.fasting or not b_exam.breaks_fast:
        return True
    return f.end <= b.start - timedelta(minutes=b_exam.drink_before_minutes)


def rule_order(cat: Catalogue, orders: Iterable[OrderItem]) -> list[OrderItem]:
    """Orders sorted so that each strict ``first`` comes before its ``second`` (stable)."""
    todo = list(orders)
    out: list[OrderItem] = []
    while todo:
        for item in todo:
            blocked = any(r.second == item.exam_code and r.reverse_minutes is None
                          and any(o.exam_code == r.first for o in todo if o is not item)
                          for r in cat.orders)
            if not blocked:
                out.append(item)
                todo.remove(item)
                break
        else:  # a cycle cannot happen in a parsed catalogue; keep the rest as given
            out.extend(todo)
            break
    return out


# --- channels (EX-1) ---------------------------------------------------------------------


class ExamChannel(StrEnum):
    clinic = "clinic"
    kiosk = "kiosk"
    centre = "centre"
    window = "window"
    online = "online"


CHANNEL_LABELS = {ExamChannel.clinic: "诊间", ExamChannel.kiosk: "自助机",
                  ExamChannel.centre: "检查预约中心", ExamChannel.window: "窗口",
                  ExamChannel.online: "网上"}
#: The channel each role books exams through.
ROLE_CHANNEL = {"doctor": ExamChannel.clinic, "kiosk": ExamChannel.kiosk,
                "exam_centre": ExamChannel.centre, "hospital_admin": ExamChannel.centre,
                "window": ExamChannel.window, "patient": ExamChannel.online,
                "proxy": ExamChannel.online}
#: Channels that count as online for the no-show restriction (EX-4, as for visits).
RESTRICTED_CHANNELS = frozenset({ExamChannel.online})


def complex_exam(exam: ExamType) -> bool:
    """Sedation, contrast or bowel preparation: arranged with a person, not a machine."""
    return exam.sedation or exam.contrast is not None or exam.bowel_prep


def channel_allows(channel: ExamChannel, exams: Sequence[ExamType]) -> bool:
    """EX-1: a single simple exam anywhere; several or complex ones in clinic or at the
    central booking centre."""
    if channel in (ExamChannel.clinic, ExamChannel.centre):
        return True
    return len(exams) == 1 and not complex_exam(exams[0])
