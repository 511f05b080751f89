"""Pure rules of prescription and cost analytics: periods, import fields, thresholds.

Nothing here touches a database or a file. Every threshold is a default that a deployment
may override (``ONETRIP_QUALITY_THRESHOLDS``); docs/quality.md names the source of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, TypeGuard

# --- periods -------------------------------------------------------------------------------


class PeriodKind(StrEnum):
    week = "week"
    month = "month"
    quarter = "quarter"


@dataclass(frozen=True)
class Period:
    """A half-open date range [start, end) with the label users type (2026-10, 2026-Q4,
    2026-W43)."""

    kind: PeriodKind
    label: str
    start: date
    end: date

    def previous(self) -> Period:
        return _parse(_shift(self, -1))

    def months(self) -> list[str]:
        """The months (YYYY-MM) this period touches: the import unit is one month."""
        out: list[str] = []
        d = date(self.start.year, self.start.month, 1)
        while d < self.end:
            out.append(f"{d.year:04d}-{d.month:02d}")
            d = _add_months(d, 1)
        return out


# ASCII digits only: ``\d`` would also take full-width ones (２０２６-１０).
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_QUARTER = re.compile(r"^([0-9]{4})-[Qq]([1-4])$")
_WEEK = re.compile(r"^([0-9]{4})-[Ww]([0-9]{2})$")
#: The years a user may name. The analyses reach a year back from a period (previous
#: period, 12-month trend) and the calendar must still hold that year.
USER_YEARS = range(1900, 2201)


def _add_months(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """Parse ``2026-10`` (month), ``2026-Q4`` (quarter) or ``2026-W43`` (ISO week) of the
    years 1900 to 2200; raises ValueError."""
    return _parse(text, USER_YEARS)


def _parse(text: str, years: range | None = None) -> Period:
    """Parse a period label; without ``years`` (a period derived from a parsed one) any
    year the calendar holds."""
    text = text.strip()
    m = _MONTH.match(text) or _QUARTER.match(text) or _WEEK.match(text)
    if m is None or (years is not None and int(m[1]) not in years):
        raise ValueError(text)
    year, n = int(m[1]), int(m[2])
    if m.re is _MONTH:
        if not 1 <= n <= 12:
            raise ValueError(text)
        start = date(year, n, 1)
        return Period(PeriodKind.month, f"{year:04d}-{n:02d}", start, _add_months(start, 1))
    if m.re is _QUARTER:
        start = date(year, 3 * n - 2, 1)
        return Period(PeriodKind.quarter, f"{year:04d}-Q{n}", start, _add_months(start, 3))
    start = date.fromisocalendar(year, n, 1)
    return Period(PeriodKind.week, f"{year:04d}-W{n:02d}", start, start + timedelta(days=7))


def _shift(p: Period, n: int) -> str:
    if p.kind is PeriodKind.month:
        d = _add_months(p.start, n)
        return f"{d.year:04d}-{d.month:02d}"
    if p.kind is PeriodKind.quarter:
        d = _add_months(p.start, 3 * n)
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    iso = (p.start + timedelta(days=7 * n)).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month label from ``first`` to ``last`` inclusive."""
    out = []
    d, end = _parse(first).start, _parse(last).start
    while d <= end:
        out.append(f"{d.year:04d}-{d.month:02d}")
        d = _add_months(d, 1)
    return out


# --- import fields ------------------------------------------------------------------------


class DatasetKind(StrEnum):
    prescriptions = "prescriptions"
    charges = "charges"


DATASET_LABELS = {DatasetKind.prescriptions: "处方明细", DatasetKind.charges: "费用明细"}

VISIT_TYPES = {"outpatient": ("门诊", "o", "mz"), "emergency": ("急诊", "e", "jz"),
               "inpatient": ("住院", "i", "zy", "出院带药")}
PRESCRIPTION_KINDS = {"western": ("西药", "西药处方", "w"),
                      "chinese_patent": ("中成药", "中成药处方", "cp"),
                      "herbal": ("中药饮片", "饮片", "草药", "h")}
ROUTES = {"oral": ("口服", "po"), "iv": ("静脉", "静滴", "静注", "静脉滴注", "静脉注射"),
          "im": ("肌注", "肌内注射", "肌肉注射"), "sc": ("皮下", "皮下注射", "ih"),
          "topical": ("外用",), "inhalation": ("吸入", "雾化"), "other": ("其他",)}
INJECTION_ROUTES = ("iv", "im", "sc")
ANTIBACTERIAL_GRADES = {"none": ("", "否", "无", "0", "n"),
                        "unrestricted": ("非限制", "非限制使用级", "1"),
                        "restricted": ("限制", "限制使用级", "2"),
                        "special": ("特殊", "特殊使用", "特殊使用级", "3")}
GRADE_ORDER = {"none": 0, "unrestricted": 1, "restricted": 2, "special": 3}
GRADE_LABELS = {"none": "非抗菌药物", "unrestricted": "非限制使用级",
                "restricted": "限制使用级", "special": "特殊使用级"}
CHARGE_CATEGORIES = {
    "drug_western": ("西药", "西药费"), "drug_chinese_patent": ("中成药", "中成药费"),
    "drug_herbal": ("中药饮片", "草药", "中草药", "饮片"),
    "consumable": ("卫生材料", "材料", "材料费", "耗材"), "exam": ("检查", "检查费"),
    "lab": ("检验", "化验", "化验费", "检验费"), "treatment": ("治疗", "治疗费"),
    "surgery": ("手术", "手术费"), "nursing": ("护理", "护理费"), "bed": ("床位", "床位费"),
    "registration": ("挂号", "诊查", "诊查费", "挂号费"), "other": ("其他", "其他费"),
}
DRUG_CATEGORIES = ("drug_western", "drug_chinese_patent", "drug_herbal")
TEST_CATEGORIES = ("exam", "lab")
BOOL_ALIASES = {"true": ("1", "y", "yes", "t", "是", "true"),
                "false": ("0", "n", "no", "f", "否", "false", "")}


#: No quantity, price or amount of one line reaches a billion (yuan, units or days): a value
#: past it is a fault of the export, and 1e308 summed over a month is infinity.
NUMBER_BOUND = 1_000_000_000


@dataclass(frozen=True)
class FieldSpec:
    """One column of an import: canonical name, type, whether required, Chinese headers."""

    name: str
    type: str  # text | timestamp | date | number | int | bool | enum
    label: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    minimum: float | None = None
    default: str | None = None


PRESCRIPTION_FIELDS = (
    FieldSpec("prescription_id", "text", "处方号", True, ("处方编号", "处方ID")),
    FieldSpec("prescribed_at", "timestamp", "开方时间", True, ("处方时间", "开具时间")),
    FieldSpec("hospital", "text", "医院编码", aliases=("机构编码",)),
    FieldSpec("department_code", "text", "科室编码", True, ("开方科室编码",)),
    FieldSpec("department_name", "text", "科室名称", aliases=("开方科室", "科室")),
    FieldSpec("prescriber_code", "text", "医生工号", True, ("医师工号", "开方医生工号")),
    FieldSpec("prescriber_name", "text", "医生姓名", aliases=("开方医生", "医师姓名")),
    FieldSpec("patient_id", "text", "患者ID", True, ("患者标识", "病人ID")),
    FieldSpec("visit_id", "text", "就诊号", True, ("就诊ID", "门诊号/住院号")),
    FieldSpec("visit_type", "enum", "就诊类型", True, ("门诊类型",), VISIT_TYPES),
    FieldSpec("prescription_kind", "enum", "处方类别", aliases=("处方类型",),
              choices=PRESCRIPTION_KINDS, default="western"),
    FieldSpec("diagnoses", "text", "诊断编码", aliases=("ICD10", "诊断")),
    FieldSpec("is_long_term", "bool", "长期处方", aliases=("是否长期处方",)),
    FieldSpec("supply_reason", "text", "超量理由", aliases=("超量说明",)),
    FieldSpec("drug_code", "text", "药品编码", True, ("药品代码",)),
    FieldSpec("generic_name", "text", "通用名", True, ("药品通用名", "药品名称")),
    FieldSpec("specification", "text", "规格", aliases=("药品规格",)),
    FieldSpec("atc_code", "text", "ATC编码", aliases=("ATC",)),
    FieldSpec("quantity", "number", "数量", True, ("发药数量",), minimum=0.0),
    FieldSpec("unit", "text", "单位", aliases=("包装单位",)),
    FieldSpec("unit_price", "number", "单价", True, ("零售价",), minimum=0.0),
    FieldSpec("amount", "number", "金额", aliases=("总金额",), minimum=0.0),
    FieldSpec("days_supply", "int", "用药天数", aliases=("天数",), minimum=0.0),
    FieldSpec("route", "enum", "给药途径", aliases=("用法",), choices=ROUTES, default="other"),
    FieldSpec("antibacterial_grade", "enum", "抗菌药物级别", aliases=("抗菌药级别",),
              choices=ANTIBACTERIAL_GRADES, default="none"),
    FieldSpec("is_vbp", "bool", "集采", aliases=("集采药品", "国家集采中选")),
    FieldSpec("is_essential", "bool", "基本药物", aliases=("国家基本药物",)),
    FieldSpec("is_controlled", "bool", "麻精药品", aliases=("麻醉精神药品",)),
)

CHARGE_FIELDS = (
    FieldSpec("visit_id", "text", "就诊号", True, ("就诊ID", "门诊号/住院号")),
    FieldSpec("charged_on", "date", "费用日期", True, ("结算日期", "收费日期")),
    FieldSpec("hospital", "text", "医院编码", aliases=("机构编码",)),
    FieldSpec("department_code", "text", "科室编码", True, ("开单科室编码",)),
    FieldSpec("department_name", "text", "科室名称", aliases=("开单科室", "科室")),
    FieldSpec("visit_type", "enum", "就诊类型", True, (), VISIT_TYPES),
    FieldSpec("patient_id", "text", "患者ID", aliases=("患者标识", "病人ID")),
    FieldSpec("category", "enum", "费用类别", True, ("收入类别",), CHARGE_CATEGORIES),
    FieldSpec("amount", "number", "金额", True, ("费用金额",)),
    FieldSpec("quantity", "number", "数量", aliases=("床日数",)),
)

FIELDS: dict[DatasetKind, tuple[FieldSpec, ...]] = {
    DatasetKind.prescriptions: PRESCRIPTION_FIELDS, DatasetKind.charges: CHARGE_FIELDS}
#: The column whose date must fall in the imported month.
PERIOD_FIELD = {DatasetKind.prescriptions: "prescribed_at", DatasetKind.charges: "charged_on"}


def is_column_mapping(value: object) -> TypeGuard[dict[str, str]]:
    """Whether ``value`` is a column mapping: an object of field names to header texts."""
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in value.items())


def resolve_columns(kind: DatasetKind, headers: list[str],
                    mapping: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Map file headers to canonical fields: the explicit ``mapping`` (field -> header)
    first, then the canonical name, the Chinese label and its aliases. Returns
    (field -> header, missing required field labels)."""
    mapping = mapping or {}
    specs = FIELDS[kind]
    known = {s.name for s in specs}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ValueError("unknown fields: " + ", ".join(unknown))
    stripped = {h.strip().lstrip("\ufeff"): h for h in headers}
    out: dict[str, str] = {}
    for spec in specs:
        if spec.name in mapping:
            if mapping[spec.name] in headers:
                out[spec.name] = mapping[spec.name]
            continue
        for candidate in (spec.name, spec.label, *spec.aliases):
            if candidate in stripped:
                out[spec.name] = stripped[candidate]
                break
    missing = [f"{s.label}({s.name})" for s in specs if s.required and s.name not in out]
    return out, missing


# --- thresholds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Defaults of every check; docs/quality.md gives the source of each."""

    max_drugs_per_prescription: int = 5          # 处方管理办法 第六条
    max_days_supply: int = 7                      # 处方管理办法 第十九条
    max_days_supply_emergency: int = 3            # 处方管理办法 第十九条
    max_days_long_term: int = 84                  # 长期处方管理规范（试行）2021: 12 weeks
    outpatient_antibacterial_rate: float = 0.20   # 抗菌药物临床应用专项整治 2011
    emergency_antibacterial_rate: float = 0.40
    inpatient_antibacterial_rate: float = 0.60
    antibacterial_intensity: float = 40.0         # DDDs per 100 patient-days
    drug_cost_ratio: float = 0.30                 # 国办发〔2015〕33号
    consumables_per_100: float = 20.0             # 国办发〔2015〕33号
    outpatient_injection_rate: float | None = None  # monitored: no national target
    exclude_herbal: bool = True                   # 药占比 excludes 中药饮片 (2015 definition)
    double_ten_size: int = 10
    contributors: int = 3

    @classmethod
    def with_overrides(cls, overrides: dict[str, Any]) -> Thresholds:
        names = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise ValueError("unknown thresholds: " + ", ".join(bad))
        return replace(cls(), **overrides)


# --- checks and reviews -------------------------------------------------------------------


class Check(StrEnum):
    big_prescription = "big_prescription"
    over_supply = "over_supply"
    long_term_over = "long_term_over"
    long_term_forbidden = "long_term_forbidden"
    multiple_antibacterials = "multiple_antibacterials"
    special_in_outpatient = "special_in_outpatient"
    no_privilege = "no_privilege"


CHECK_LABELS = {
    Check.big_prescription: "西药处方超过5种药品",
    Check.over_supply: "超过7日用量（急诊3日）且未注明理由",
    Check.long_term_over: "长期处方超过12周",
    Check.long_term_forbidden: "长期处方含抗菌药物或麻醉、精神药品",
    Check.multiple_antibacterials: "一张处方联用两种及以上抗菌药物",
    Check.special_in_outpatient: "门急诊使用特殊使用级抗菌药物",
    Check.no_privilege: "医生无相应级别抗菌药物处方权",
}


class Verdict(StrEnum):
    rational = "rational"
    irrational = "irrational"


VERDICT_LABELS = {Verdict.rational: "合理", Verdict.irrational: "不合理"}

#: Reasons pharmacists pick most often (处方点评 categories); free text is also allowed.
COMMON_REASONS = ("适应证不适宜", "遴选药品不适宜", "用法用量不适宜", "联合用药不适宜",
                  "重复给药", "超说明书用药无依据", "无正当理由超量", "无适应证用药",
                  "无正当理由开具高价药", "抗菌药物越级使用")


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    return numerator / denominator if denominator else None


def change(current: float, previous: float | None) -> float | None:
    """Relative change from the previous period; None without a previous value."""
    if previous is None or previous == 0:
        return None
    return (current - previous) / previous


def may_mark_grade(privilege: str, grade: str) -> bool:
    """Whether a prescriber holding ``privilege`` may prescribe an antibacterial of
    ``grade`` (grades are ordered: unrestricted < restricted < special)."""
    return GRADE_ORDER[grade] <= GRADE_ORDER[privilege]
