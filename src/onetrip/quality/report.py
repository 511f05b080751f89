"""The monthly workbook a medical affairs office files: one sheet per table, Chinese headers,
percentages formatted, thresholds beside the figures."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.org.models import Hospital
from onetrip.quality import analyses
from onetrip.quality import service as quality_service
from onetrip.quality.engine import RankedDrug
from onetrip.quality.rules import CHECK_LABELS, VERDICT_LABELS, Period, Thresholds, Verdict

PCT = "0.00%"
MONEY = "#,##0.00"
HEAD = PatternFill("solid", fgColor="DDEBF7")
BAD = Font(color="C00000", bold=True)

VISIT_LABELS = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院"}


def indicator_rows(t: Thresholds) -> list[tuple[str, str, str, float | None, str]]:
    """(key, name, source, target, direction) of every headline indicator."""
    return [
        ("drug_cost_ratio", "药占比（不含中药饮片）" if t.exclude_herbal else "药占比",
         "国办发〔2015〕33号", t.drug_cost_ratio, "max"),
        ("consumables_per_100", "百元医疗收入（不含药品收入）卫生材料消耗（元）",
         "国办发〔2015〕33号", t.consumables_per_100, "max"),
        ("consumables_ratio", "耗占比（卫生材料收入/医疗收入）", "常用口径", None, ""),
        ("service_income_share", "医疗服务收入占医疗收入比例", "国考#31", None, "raise"),
        ("vbp_volume_share", "集采中选药品用量占比", "国考#21", None, "raise"),
        ("vbp_amount_share", "集采中选药品金额占比", "二级国考#8", None, "raise"),
        ("key_drug_share", "重点监控药品收入占比", "国考#32", None, "monitored"),
        ("essential_visit_share", "门诊患者基本药物处方占比", "国考#18", None, "raise"),
        ("reviewed_share", "点评处方占处方总数的比例", "国考#16", None, "raise"),
        ("outpatient_antibacterial_rate", "门诊抗菌药物处方比例", "抗菌药物专项整治",
         t.outpatient_antibacterial_rate, "max"),
        ("emergency_antibacterial_rate", "急诊抗菌药物处方比例", "抗菌药物专项整治",
         t.emergency_antibacterial_rate, "max"),
        ("inpatient_antibacterial_rate", "住院患者抗菌药物使用率", "抗菌药物专项整治",
         t.inpatient_antibacterial_rate, "max"),
        ("antibacterial_intensity", "抗菌药物使用强度（DDDs/百人天）", "抗菌药物专项整治",
         t.antibacterial_intensity, "max"),
        ("outpatient_injection_rate", "门诊注射剂处方比例", "监测", t.outpatient_injection_rate,
         "max"),
    ]


def _header(ws: Worksheet, titles: list[str], widths: list[int] | None = None) -> None:
    ws.append(titles)
    for i, cell in enumerate(ws[ws.max_row], 1):
        cell.font = Font(bold=True)
        cell.fill = HEAD
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        ws.column_dimensions[cell.column_letter].width = (widths or [])[i - 1] if (
            widths and i <= len(widths)) else 14
    ws.freeze_panes = f"A{ws.max_row + 1}"


def _fmt(ws: Worksheet, col: int, fmt: str) -> None:
    for row in ws.iter_rows(min_row=2, min_col=col, max_col=col):
        row[0].number_format = fmt


def _drugs(ws: Worksheet, drugs: list[RankedDrug], metric: str, marks: dict[str, Any],
           total: float) -> None:
    _header(ws, ["排名", "药品编码", "通用名", "规格", "金额（元）", "金额占比", "数量", "单位",
                 "处方行数", "上期排名", "上期" + ("金额" if metric == "amount" else "数量"),
                 "环比", "贡献最多的医生", "点评结论", "点评理由"],
            [6, 10, 24, 16, 12, 10, 10, 6, 8, 8, 12, 10, 36, 8, 24])
    for d in drugs:
        mark = marks.get(d.drug_code)
        people = "；".join(
            f"{c['prescriber_name'] or c['prescriber_code']}（{c['department_name']}）"
            f"{c[metric]:.2f}" for c in d.contributors)
        ws.append([d.rank, d.drug_code, d.generic_name, d.specification, d.amount,
                   d.amount / total if total else None, d.quantity, d.unit, d.lines, d.prev_rank,
                   d.prev_amount if metric == "amount" else d.prev_quantity, d.change, people,
                   VERDICT_LABELS[Verdict(mark.verdict)] if mark else "未点评",
                   mark.reason if mark else ""])
    _fmt(ws, 5, MONEY)
    _fmt(ws, 6, PCT)
    _fmt(ws, 12, PCT)


def build_workbook(db: Session, hospital: Hospital, period: Period) -> Workbook:
    """The whole report of one hospital and period."""
    t = quality_service.thresholds()
    ten, marks = analyses.double_ten(db, hospital, period)
    rat = analyses.ratios(db, hospital, period)
    use = analyses.rational(db, hospital, period)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概览"
    ws.append([f"{hospital.name} 处方与费用分析（{period.label}）"])
    ws["A1"].font = Font(bold=True, size=14)
    now = utcnow().astimezone(get_settings().tz)
    last_day = period.end - timedelta(days=1)
    ws.append([f"生成时间：{now:%Y-%m-%d %H:%M}　数据期间：{period.start} 至 {last_day}"])
    ws.append([])
    _header(ws, ["指标", "本期数值", "目标/阈值", "是否达标", "来源"], [40, 14, 12, 10, 22])
    values = rat.total | rat.shares | use.indicators
    for key, name, source, target, direction in indicator_rows(t):
        value = values.get(key)
        ok = ("" if target is None or value is None else
              ("达标" if value <= target else "未达标") if direction == "max" else "")
        ws.append([name, value, target, ok, source])
        row = ws.max_row
        fmt = "0.00" if key in ("consumables_per_100", "antibacterial_intensity") else PCT
        ws.cell(row=row, column=2).number_format = fmt
        ws.cell(row=row, column=3).number_format = fmt
        if ok == "未达标":
            ws.cell(row=row, column=4).font = BAD
    ws.freeze_panes = None

    _drugs(wb.create_sheet("双十-金额前十"), ten.by_amount, "amount", marks, ten.total_amount)
    _drugs(wb.create_sheet("双十-数量前十"), ten.by_quantity, "quantity", marks,
           ten.total_amount)

    ws = wb.create_sheet("科室药占比耗占比")
    _header(ws, ["排名", "科室", "医疗收入（元）", "药品收入（元）", "其中中药饮片",
                 "卫生材料（元）", "检查检验（元）", "药占比",
                 "百元医疗收入卫生材料消耗（元）", "耗占比", "医疗服务收入占比"],
            [6, 18, 14, 14, 12, 14, 14, 10, 16, 10, 12])
    for d in rat.departments:
        inc, ind = d["income"], d["indicators"]
        ws.append([d["rank"], d["name"], inc.medical, inc.drugs, inc.herbal, inc.consumables,
                   inc.tests, ind["drug_cost_ratio"], ind["consumables_per_100"],
                   ind["consumables_ratio"], ind["service_income_share"]])
    for col in (3, 4, 5, 6, 7):
        _fmt(ws, col, MONEY)
    for col in (8, 10, 11):
        _fmt(ws, col, PCT)
    _fmt(ws, 9, "0.00")

    ws = wb.create_sheet("月度趋势")
    _header(ws, ["月份", "医疗收入（元）", "药占比", "百元医疗收入卫生材料消耗（元）", "耗占比",
                 "医疗服务收入占比"], [10, 16, 10, 16, 10, 14])
    for m in rat.trend:
        ws.append([m["month"], m["medical"], m["drug_cost_ratio"], m["consumables_per_100"],
                   m["consumables_ratio"], m["service_income_share"]])
    _fmt(ws, 2, MONEY)
    for col in (3, 5, 6):
        _fmt(ws, col, PCT)

    ws = wb.create_sheet("合理用药检查")
    _header(ws, ["检查项", "问题处方数"], [44, 12])
    for check, count in use.finding_counts.items():
        ws.append([CHECK_LABELS[check], count])
    ws.append([])
    ws.append(["问题处方明细（每项最多50张）"])
    _header(ws, ["检查项", "处方号", "开方时间", "就诊类型", "科室", "医生", "药品数", "最长天数",
                 "金额（元）"], [30, 20, 18, 8, 14, 10, 8, 8, 12])
    for check, rows in use.findings.items():
        for f in rows:
            ws.append([CHECK_LABELS[check], f["prescription_id"], f["prescribed_at"],
                       VISIT_LABELS.get(f["visit_type"], f["visit_type"]), f["department_name"],
                       f["prescriber_name"] or f["prescriber_code"], f["drugs"], f["days"],
                       f["amount"]])

    ws = wb.create_sheet("不合理用药医生")
    _header(ws, ["医生工号", "医生", "科室", "点评不合理处方数", "点评理由", "自动检查问题处方数"],
            [10, 10, 16, 12, 40, 14])
    reviewed = quality_service.irrational_prescribers(db, hospital, period.months())
    found = {p["prescriber_code"]: p for p in use.prescribers}
    for p in reviewed:
        code = str(p["prescriber_code"])
        reasons = p["reasons"] if isinstance(p["reasons"], list) else []
        ws.append([code, p["prescriber_name"], p["department_name"], p["irrational"],
                   "；".join(str(r) for r in reasons), found.get(code, {}).get("findings", 0)])
    for code, p in found.items():
        if code not in {str(r["prescriber_code"]) for r in reviewed}:
            ws.append([code, p["prescriber_name"], p["department_name"], 0, "",
                       p["findings"]])
    return wb


def workbook_bytes(db: Session, hospital: Hospital, period: Period) -> bytes:
    buf = BytesIO()
    build_workbook(db, hospital, period).save(buf)
    return buf.getvalue()
