"""The exam catalogue as data: exams with their preparation, order rules between pairs and
pairs that may not share a day, each citing its source.

No session. The catalogue arrives as plain data (the packaged ``data/catalogue.toml`` or an
exam centre's edited copy from the database) and is parsed into frozen values here; the
rules, the planner, the validator and the service read it through these types.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
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
    for key in ("minutes", "after_minutes", "result_minutes", "fasting_hours", "prep_days",
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
