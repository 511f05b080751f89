"""Pure exam rules: the catalogue, preparation, order between exams, one patient's day.

No session. The catalogue arrives as plain data (the packaged ``data/catalogue.toml`` or an
exam centre's edited copy from the database) and is parsed into frozen values here; the
planner, the greedy baseline and the service read the rules through these types.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

MODALITY_LABELS = {"us": "超声", "ct": "CT", "mri": "磁共振", "endo": "内镜", "fluoro": "造影",
                   "nm": "核医学", "xray": "放射", "ecg": "心电图", "lab": "检验"}
#: EX-3: ultrasound, CT, MRI and endoscopy are booked in slots of 30 minutes or finer.
EX3_MODALITIES = frozenset({"us", "ct", "mri", "endo"})
EX3_MAX_SLOT_MINUTES = 30
DEFAULT_WALK_MINUTES = 10
FOLLOWUP_MINUTES = 15


class CatalogueInvalid(ValueError):
    """A catalogue or rule the planner cannot use (message in Chinese)."""


@dataclass(frozen=True)
class ExamType:
    code: str
    name: str
    modality: str
    minutes: int
    source: str
    instruction: str = ""
    after_minutes: int = 0
    result_minutes: int = 60
    fasting_hours: int = 0
    breaks_fast: bool = False
    drink_before_minutes: int = 0
    latest_start: time | None = None
    full_bladder: bool = False
    contrast: str | None = None
    creatinine: bool = False
    creatinine_days: int = 30
    creatinine_age: int = 60
    sedation: bool = False
    bowel_prep: bool = False
    escort: bool = False
    last_of_day: bool = False

    @property
    def fasting(self) -> bool:
        return self.fasting_hours > 0


@dataclass(frozen=True)
class OrderRule:
    """``first`` before ``second`` (``gap_minutes`` apart), or the reverse only with
    ``reverse_minutes`` between them (None: never the reverse)."""

    first: str
    second: str
    reason: str
    source: str
    gap_minutes: int = 0
    reverse_minutes: int | None = None


@dataclass(frozen=True)
class SameDayBan:
    first: str
    second: str
    reason: str
    source: str


@dataclass(frozen=True)
class Catalogue:
    exams: Mapping[str, ExamType]
    orders: tuple[OrderRule, ...] = ()
    bans: tuple[SameDayBan, ...] = ()

    def order_rules(self, a: str, b: str) -> list[OrderRule]:
        """The order rules between two exam codes, in either direction."""
        return [r for r in self.orders if {r.first, r.second} == {a, b}]

    def banned_same_day(self, a: str, b: str) -> SameDayBan | None:
        return next((r for r in self.bans if {r.first, r.second} == {a, b}), None)


_EXAM_FIELDS = {f for f in ExamType.__dataclass_fields__}
_BOOL_FIELDS = {"breaks_fast", "full_bladder", "creatinine", "sedation", "bowel_prep", "escort",
                "last_of_day"}


def _exam(row: Mapping[str, Any]) -> ExamType:
    unknown = set(row) - _EXAM_FIELDS
    code = str(row.get("code", ""))
    if unknown:
        raise CatalogueInvalid(f"检查{code}含有未知字段：{'、'.join(sorted(unknown))}")
    for key in ("code", "name", "modality", "minutes", "source"):
        if not row.get(key):
            raise CatalogueInvalid(f"检查{code or '（无编码）'}缺少{key}")
    values = dict(row)
    latest = values.get("latest_start")
    if latest is not None and not isinstance(latest, time):
        try:
            values["latest_start"] = time.fromisoformat(str(latest))
        except ValueError as exc:
            raise CatalogueInvalid(f"检查{code}的latest_start应为HH:MM") from exc
    for key in ("minutes", "after_minutes", "result_minutes", "fasting_hours",
                "drink_before_minutes", "creatinine_days", "creatinine_age"):
        if key in values and (not isinstance(values[key], int) or values[key] < 0):
            raise CatalogueInvalid(f"检查{code}的{key}应为非负整数")
    for key in _BOOL_FIELDS & set(values):
        values[key] = bool(values[key])
    if values["minutes"] < 1:
        raise CatalogueInvalid(f"检查{code}的minutes应大于0")
    return ExamType(**values)


def _pair(row: Mapping[str, Any], exams: Mapping[str, ExamType], kind: str) -> dict[str, Any]:
    first, second = str(row.get("first", "")), str(row.get("second", ""))
    for code in (first, second):
        if code not in exams:
            raise CatalogueInvalid(f"{kind}规则引用了目录中没有的检查：{code or '（空）'}")
    if first == second:
        raise CatalogueInvalid(f"{kind}规则的两项检查不能相同：{first}")
    if not row.get("source") or not row.get("reason"):
        raise CatalogueInvalid(f"{kind}规则{first}→{second}须注明理由和依据")
    return {"first": first, "second": second, "reason": str(row["reason"]),
            "source": str(row["source"])}


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """The catalogue from its data form (TOML or stored JSON); raises CatalogueInvalid."""
    exams: dict[str, ExamType] = {}
    for row in data.get("exam", []):
        exam = _exam(row)
        if exam.code in exams:
            raise CatalogueInvalid(f"检查编码重复：{exam.code}")
        exams[exam.code] = exam
    orders = []
    for row in data.get("order", []):
        base = _pair(row, exams, "先后")
        gap = row.get("gap_minutes", 0)
        if "reverse_days" in row:
            reverse: int | None = int(row["reverse_days"]) * 24 * 60
        elif "reverse_minutes" in row:
            reverse = int(row["reverse_minutes"])
        else:
            reverse = None
        if not isinstance(gap, int) or gap < 0 or (reverse is not None and reverse < 0):
            raise CatalogueInvalid(f"先后规则{base['first']}→{base['second']}的间隔应为非负整数")
        orders.append(OrderRule(**base, gap_minutes=gap, reverse_minutes=reverse))
    bans = [SameDayBan(**_pair(row, exams, "不同日")) for row in data.get("not_same_day", [])]
    _check_acyclic(orders)
    return Catalogue(exams=exams, orders=tuple(orders), bans=tuple(bans))


def _check_acyclic(orders: Iterable[OrderRule]) -> None:
    """Strict order rules (no reverse allowed) must not form a cycle: nothing could be done."""
    after: dict[str, set[str]] = {}
    for r in orders:
        if r.reverse_minutes is None:
            after.setdefault(r.first, set()).add(r.second)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in after.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    for first, seconds in after.items():
        for second in seconds:
            if reaches(second, first, {second}):
                raise CatalogueInvalid(f"先后规则成环：{first}与{second}互相要求在前")


def default_catalogue_data() -> dict[str, Any]:
    """The packaged catalogue (data/catalogue.toml) as plain data."""
    text = resources.files("onetrip.exams").joinpath("data/catalogue.toml").read_text("utf-8")
    return tomllib.loads(text)


def catalogue_as_data(cat: Catalogue) -> dict[str, Any]:
    """The catalogue as JSON-ready data, the inverse of :func:`parse_catalogue`."""
    def exam(e: ExamType) -> dict[str, Any]:
        out = {k: getattr(e, k) for k in ExamType.__dataclass_fields__}
        out["latest_start"] = e.latest_start.strftime("%H:%M") if e.latest_start else None
        return {k: v for k, v in out.items() if v is not None}

    def order(r: OrderRule) -> dict[str, Any]:
        out: dict[str, Any] = {"first": r.first, "second": r.second, "reason": r.reason,
                               "source": r.source, "gap_minutes": r.gap_minutes}
        if r.reverse_minutes is not None:
            out["reverse_minutes"] = r.reverse_minutes
        return out

    return {"exam": [exam(e) for e in cat.exams.values()],
            "order": [order(r) for r in cat.orders],
            "not_same_day": [{"first": b.first, "second": b.second, "reason": b.reason,
                              "source": b.source} for b in cat.bans]}


# --- the patient -------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFacts:
    """What the preparation rules need to know about a patient (from the doctor's order)."""

    age: int
    renal_disease: bool = False
    diabetes: bool = False
    creatinine_on: date | None = None


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
    patient_id: int
    facts: PatientFacts
    orders: tuple[OrderItem, ...]
    not_before: datetime
    followup: FollowUp | None = None


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


def slot_allowed(exam: ExamType, slot: FreeSlot, facts: PatientFacts, not_before: datetime,
                 tz: ZoneInfo) -> bool:
    """The unary rules: the resource does the exam, in time, mornings only, creatinine."""
    local = slot.start.astimezone(tz)
    return (exam.code in slot.exam_codes and slot.free > 0 and slot.start >= not_before
            and slot.minutes >= exam.minutes
            and (exam.latest_start is None or local.time() <= exam.latest_start)
            and creatinine_ok(exam, facts, local.date()))


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
