"""The exam catalogue as data: exams with their preparation, order rules between pairs and
pairs that may not share a day, each citing its source.

No session. The catalogue arrives as plain data (the packaged ``data/catalogue.toml`` or an
exam centre's edited copy from the database) and is parsed into frozen values here; the
rules, the planner, the validator and the service read it through these types.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import time
from importlib import resources
from typing import Any

MODALITY_LABELS = {"us": "超声", "ct": "CT", "mri": "磁共振", "endo": "内镜", "fluoro": "造影",
                   "nm": "核医学", "xray": "放射", "ecg": "心电图", "lab": "检验"}


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
    #: Days of preparation at home, counted from the day the patient is told (no iodine for
    #: two weeks before a thyroid scan).
    prep_days: int = 0
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


DAY_MINUTES = 24 * 60
#: No slot is longer (a resource's ``slot_minutes``), so no exam may take longer.
MAX_SLOT_MINUTES = 240
#: The span each number may take: past it the value is a slip of the keyboard, and the
#: planner's time arithmetic (and the database's integers) would overflow.
_NUMBERS = {"minutes": (1, MAX_SLOT_MINUTES), "after_minutes": (0, DAY_MINUTES),
            "result_minutes": (0, 90 * DAY_MINUTES), "fasting_hours": (0, 24),
            "prep_days": (0, 60), "drink_before_minutes": (0, MAX_SLOT_MINUTES),
            "creatinine_days": (0, 365), "creatinine_age": (0, 150),
            "gap_minutes": (0, 30 * DAY_MINUTES), "reverse_minutes": (0, 30 * DAY_MINUTES),
            "reverse_days": (0, 30)}
#: The longest text of each field (the database's columns for codes, names and rules).
_TEXTS = {"code": 40, "name": 100, "modality": 16, "source": 300, "instruction": 500,
          "contrast": 40, "reason": 300}
_EXAM_FIELDS = set(ExamType.__dataclass_fields__)
_BOOL_FIELDS = {"breaks_fast", "full_bladder", "creatinine", "sedation", "bowel_prep", "escort",
                "last_of_day"}
_PAIR_FIELDS = {"first", "second", "reason", "source"}
_ORDER_FIELDS = _PAIR_FIELDS | {"gap_minutes", "reverse_days", "reverse_minutes"}
_SECTIONS = ("exam", "order", "not_same_day")


def _number(row: Mapping[str, Any], key: str, where: str) -> int:
    lo, hi = _NUMBERS[key]
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CatalogueInvalid(f"{where}的{key}应为{lo}到{hi}之间的整数")
    return value


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise CatalogueInvalid(f"{where}的{key}应为文本")
    if len(value) > _TEXTS[key]:
        raise CatalogueInvalid(f"{where}的{key}不能超过{_TEXTS[key]}字")
    return value


def _table(row: object, where: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise CatalogueInvalid(f"{where}应为对象")
    return row


def _known(row: Mapping[str, Any], fields: set[str], where: str) -> None:
    unknown = set(row) - fields
    if unknown:
        raise CatalogueInvalid(f"{where}含有未知字段：{'、'.join(sorted(map(str, unknown)))}")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _latest_start(value: object, where: str) -> time:
    at = value if isinstance(value, time) else None
    if isinstance(value, str):
        with suppress(ValueError):
            at = time.fromisoformat(value)
    if at is None or at.tzinfo is not None or at.second or at.microsecond:
        raise CatalogueInvalid(f"{where}的latest_start应为HH:MM（当地时间）")
    return at


def _exam(raw: object, n: int) -> ExamType:
    row = _table(raw, f"检查目录exam的第{n}项")
    code = row.get("code")
    where = f"检查{code}" if isinstance(code, str) and code.strip() else f"检查（第{n}项）"
    _known(row, _EXAM_FIELDS, where)
    for key in ("code", "name", "modality", "minutes", "source"):
        if _blank(row.get(key)):
            raise CatalogueInvalid(f"{where}缺少{key}")
    for key in _TEXTS.keys() & set(row):
        if key != "contrast" or row[key] is not None:
            _text(row, key, where)
    for key in _NUMBERS.keys() & set(row):
        _number(row, key, where)
    for key in _BOOL_FIELDS & set(row):
        if not isinstance(row[key], bool):
            raise CatalogueInvalid(f"{where}的{key}应为true或false")
    values = dict(row)
    if row.get("latest_start") is not None:
        values["latest_start"] = _latest_start(row["latest_start"], where)
    return ExamType(**values)


_KINDS = {"order": "先后", "not_same_day": "不同日"}


def _pair(raw: object, n: int, exams: Mapping[str, ExamType], section: str,
          fields: set[str]) -> tuple[Mapping[str, Any], str, dict[str, Any]]:
    """A rule's row, how messages name it, and its two exams with the reason and source."""
    kind = _KINDS[section]
    row = _table(raw, f"{kind}规则（{section}的第{n}项）")
    first, second = row.get("first"), row.get("second")
    if not isinstance(first, str) or not isinstance(second, str):
        raise CatalogueInvalid(f"{kind}规则（{section}的第{n}项）的first和second应为检查编码")
    where = f"{kind}规则{first}→{second}"
    _known(row, fields, where)
    for code in (first, second):
        if code not in exams:
            raise CatalogueInvalid(f"{kind}规则引用了目录中没有的检查：{code or '（空）'}")
    if first == second:
        raise CatalogueInvalid(f"{kind}规则的两项检查不能相同：{first}")
    if _blank(row.get("source")) or _blank(row.get("reason")):
        raise CatalogueInvalid(f"{where}须注明理由和依据")
    return row, where, {"first": first, "second": second,
                        "reason": _text(row, "reason", where),
                        "source": _text(row, "source", where)}


def _order(raw: object, n: int, exams: Mapping[str, ExamType]) -> OrderRule:
    row, where, base = _pair(raw, n, exams, "order", _ORDER_FIELDS)
    if {"reverse_days", "reverse_minutes"} <= set(row):
        raise CatalogueInvalid(f"{where}的reverse_days与reverse_minutes只能给出其一")
    if "reverse_days" in row:
        reverse: int | None = _number(row, "reverse_days", where) * DAY_MINUTES
    elif "reverse_minutes" in row:
        reverse = _number(row, "reverse_minutes", where)
    else:
        reverse = None
    gap = _number(row, "gap_minutes", where) if "gap_minutes" in row else 0
    return OrderRule(**base, gap_minutes=gap, reverse_minutes=reverse)


def _rows(data: Mapping[str, Any], key: str) -> list[object]:
    rows = data.get(key, [])
    if not isinstance(rows, list):
        raise CatalogueInvalid(f"检查目录的{key}应为列表")
    return rows


def _unique(rules: Iterable[OrderRule | SameDayBan], section: str) -> None:
    seen = set()
    for r in rules:
        if (r.first, r.second) in seen:
            raise CatalogueInvalid(f"{_KINDS[section]}规则{r.first}→{r.second}重复")
        seen.add((r.first, r.second))


def parse_catalogue(data: object) -> Catalogue:
    """The catalogue from its data form (TOML or stored JSON); raises CatalogueInvalid
    naming the exam or rule and the field, for anything the planner could not use."""
    if not isinstance(data, Mapping):
        raise CatalogueInvalid("检查目录应为对象（含exam、order、not_same_day）")
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise CatalogueInvalid(f"检查目录含有未知项：{'、'.join(sorted(map(str, unknown)))}"
                               f"（应为{'、'.join(_SECTIONS)}）")
    exams: dict[str, ExamType] = {}
    for n, row in enumerate(_rows(data, "exam"), 1):
        exam = _exam(row, n)
        if exam.code in exams:
            raise CatalogueInvalid(f"检查编码重复：{exam.code}")
        exams[exam.code] = exam
    if not exams:
        raise CatalogueInvalid("检查目录中没有检查（exam为空）")
    orders = [_order(row, n, exams) for n, row in enumerate(_rows(data, "order"), 1)]
    bans = [SameDayBan(**_pair(row, n, exams, "not_same_day", _PAIR_FIELDS)[2])
            for n, row in enumerate(_rows(data, "not_same_day"), 1)]
    _unique(orders, "order")
    _unique(bans, "not_same_day")
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


# --- the rules table, as the exam centre reads it ---------------------------------------


def _span(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}天"
    return f"{minutes // 60}小时" if minutes % 60 == 0 else f"{minutes}分钟"


def _cell(text: str) -> str:
    return text.replace("|", "｜").replace("\n", " ")


def rules_table(cat: Catalogue) -> str:
    """The catalogue's exams, order rules and pairs kept apart as Markdown tables (the ones
    in docs/exams.md, and ``onetrip exams rules-table`` for a hospital's own copy)."""
    def name(code: str) -> str:
        return cat.exams[code].name

    out = ["| 检查 | 编码 | 每人（分钟） | 空腹（小时） | 最晚开始 | 饮水憋尿 | 检查后留观 "
           "| 出报告 | 其他 | 依据 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in cat.exams.values():
        other = [label for flag, label in (
            (e.creatinine,
             f"{e.creatinine_age}岁及以上、肾病或糖尿病须{e.creatinine_days}天内肌酐"),
            (e.prep_days, f"提前{e.prep_days}天准备"),
            (e.sedation, "镇静"), (e.bowel_prep, "肠道准备（前一天）"), (e.escort, "须陪同"),
            (e.last_of_day, "当日最后一项"), (e.breaks_fast and not e.drink_before_minutes,
                                         "结束空腹")) if flag]
        out.append("| " + " | ".join(_cell(x) for x in (
            e.name, f"`{e.code}`", str(e.minutes), str(e.fasting_hours or "—"),
            e.latest_start.strftime("%H:%M") if e.latest_start else "—",
            f"检查前{e.drink_before_minutes}分钟" if e.drink_before_minutes else "—",
            f"{e.after_minutes}分钟" if e.after_minutes else "—", _span(e.result_minutes),
            "；".join(other) or "—", e.source)) + " |")
    out += ["", "| 先做 | 后做 | 至少间隔 | 顺序颠倒时 | 理由 | 依据 |",
            "|---|---|---|---|---|---|"]
    for r in cat.orders:
        reverse = ("不可颠倒" if r.reverse_minutes is None else
                   f"须在{name(r.second)}{_span(r.reverse_minutes)}后再做{name(r.first)}")
        out.append("| " + " | ".join(_cell(x) for x in (
            name(r.first), name(r.second), _span(r.gap_minutes) if r.gap_minutes else "—",
            reverse, r.reason, r.source)) + " |")
    out += ["", "| 不能同日 | 不能同日 | 理由 | 依据 |", "|---|---|---|---|"]
    for b in cat.bans:
        out.append("| " + " | ".join(_cell(x) for x in (
            name(b.first), name(b.second), b.reason, b.source)) + " |")
    return "\n".join(out) + "\n"
