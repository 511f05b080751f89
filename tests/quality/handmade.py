"""A hand-made month of HIS data (2026-10, plus one prescription in 2026-09).

Every expected figure in the tests is worked out by hand from these rows; the comments in
the tests show the arithmetic.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from onetrip.quality import importing
from onetrip.quality.rules import DatasetKind, parse_period

RX_HEADER = ["处方号", "开方时间", "科室编码", "科室名称", "医生工号", "医生姓名", "患者ID",
             "就诊号", "就诊类型", "处方类别", "长期处方", "超量理由", "药品编码", "通用名",
             "数量", "单价", "用药天数", "给药途径", "抗菌药物级别", "集采", "基本药物",
             "麻精药品"]

# (rx, time, dept, dept name, doctor, name, patient, visit, visit type, kind, long, reason,
#  drug, generic, qty, price, days, route, grade, vbp, essential, controlled)
RX = [
    ("R0", "2026-09-20 09:00", "nk", "内科", "D1", "张医生", "P0", "V0", "门诊", "西药", "否",
     "", "OME", "奥美拉唑肠溶胶囊", 2, 30, 3, "口服", "", "否", "是", "否"),
    ("R0", "2026-09-20 09:00", "nk", "内科", "D1", "张医生", "P0", "V0", "门诊", "西药", "否",
     "", "AMX", "阿莫西林胶囊", 5, 10, 3, "口服", "非限制", "是", "是", "否"),
    ("R1", "2026-10-03 09:10", "nk", "内科", "D1", "张医生", "P1", "V1", "门诊", "西药", "否",
     "", "AMX", "阿莫西林胶囊", 2, 10, 3, "口服", "非限制", "是", "是", "否"),
    ("R1", "2026-10-03 09:10", "nk", "内科", "D1", "张医生", "P1", "V1", "门诊", "西药", "否",
     "", "OME", "奥美拉唑肠溶胶囊", 1, 30, 3, "口服", "", "否", "是", "否"),
    *[("R2", "2026-10-05 10:00", "nk", "内科", "D1", "张医生", "P2", "V2", "门诊", "西药", "否",
       "", code, name, 1, price, days, route, "", vbp, ess, "否")
      for code, name, price, days, route, vbp, ess in [
          ("OME", "奥美拉唑肠溶胶囊", 30, 3, "口服", "否", "是"),
          ("ATV", "阿托伐他汀钙片", 15, 7, "口服", "是", "是"),
          ("MET", "盐酸二甲双胍片", 5, 7, "口服", "是", "是"),
          ("AML", "苯磺酸氨氯地平片", 8, 7, "口服", "是", "是"),
          ("ASP", "阿司匹林肠溶片", 12, 7, "口服", "否", "是"),
          ("VIN", "长春西汀注射液", 50, 10, "静脉", "否", "否")]],
    ("R3", "2026-10-06 22:00", "jz", "急诊科", "D2", "李医生", "P3", "V3", "急诊", "西药", "否",
     "", "CRO", "注射用头孢曲松钠", 2, 40, 2, "静脉", "限制", "否", "是", "否"),
    ("R3", "2026-10-06 22:00", "jz", "急诊科", "D2", "李医生", "P3", "V3", "急诊", "西药", "否",
     "", "LEV", "左氧氟沙星片", 1, 20, 5, "口服", "非限制", "否", "否", "否"),
    ("R4", "2026-10-08 08:30", "nk", "内科", "D3", "王医生", "P4", "V4", "门诊", "西药", "是",
     "", "AML2", "苯磺酸氨氯地平片", 12, 8, 90, "口服", "", "否", "是", "否"),
    ("R5", "2026-10-09 08:30", "nk", "内科", "D3", "王医生", "P5", "V5", "门诊", "西药", "是",
     "", "LEV", "左氧氟沙星片", 1, 20, 28, "口服", "非限制", "否", "否", "否"),
    ("R6", "2026-10-10 15:00", "hx", "呼吸内科", "D1", "张医生", "P6", "V6", "门诊", "西药",
     "否", "", "MEM", "注射用美罗培南", 1, 100, 1, "静脉", "特殊", "否", "否", "否"),
    ("R7", "2026-10-12 11:00", "nk", "内科", "D2", "李医生", "P7", "V7", "住院", "西药", "否",
     "", "CRO", "注射用头孢曲松钠", 4, 40, 2, "静脉", "限制", "否", "是", "否"),
    ("R8", "2026-10-13 11:00", "nk", "内科", "D1", "张医生", "P8", "V8", "住院", "西药", "否",
     "", "OME", "奥美拉唑肠溶胶囊", 2, 30, 5, "口服", "", "否", "是", "否"),
    ("R9", "2026-10-14 09:00", "zyk", "中医科", "D4", "赵医生", "P9", "V9", "门诊", "中药饮片",
     "否", "", "HERB", "黄芪", 10, 2, 7, "口服", "", "否", "否", "否"),
]

CHARGE_HEADER = ["就诊号", "费用日期", "科室编码", "科室名称", "就诊类型", "费用类别", "金额",
                 "数量"]
CHARGES = [
    ("V0", "2026-09-20", "nk", "内科", "门诊", "西药", 110, ""),
    ("V1", "2026-10-03", "nk", "内科", "门诊", "西药", 50, ""),
    ("V1", "2026-10-03", "nk", "内科", "门诊", "挂号", 10, ""),
    ("V1", "2026-10-03", "nk", "内科", "门诊", "化验", 20, ""),
    ("V2", "2026-10-05", "nk", "内科", "门诊", "西药", 120, ""),
    ("V2", "2026-10-05", "nk", "内科", "门诊", "检查", 100, ""),
    ("V2", "2026-10-05", "nk", "内科", "门诊", "卫生材料", 10, ""),
    ("V3", "2026-10-06", "jz", "急诊科", "急诊", "西药", 100, ""),
    ("V3", "2026-10-06", "jz", "急诊科", "急诊", "卫生材料", 20, ""),
    ("V3", "2026-10-06", "jz", "急诊科", "急诊", "治疗", 30, ""),
    ("V7", "2026-10-12", "nk", "内科", "住院", "西药", 160, ""),
    ("V7", "2026-10-12", "nk", "内科", "住院", "卫生材料", 100, ""),
    ("V7", "2026-10-12", "nk", "内科", "住院", "床位", 300, 6),
    ("V7", "2026-10-12", "nk", "内科", "住院", "手术", 400, ""),
    ("V7", "2026-10-12", "nk", "内科", "住院", "护理", 40, ""),
    ("V8", "2026-10-13", "nk", "内科", "住院", "西药", 60, ""),
    ("V8", "2026-10-13", "nk", "内科", "住院", "床位", 200, 4),
    ("V8", "2026-10-13", "nk", "内科", "住院", "化验", 40, ""),
    ("V9", "2026-10-14", "zyk", "中医科", "门诊", "中药饮片", 20, ""),
    ("V9", "2026-10-14", "zyk", "中医科", "门诊", "挂号", 10, ""),
    ("V9", "2026-10-14", "zyk", "中医科", "门诊", "治疗", 70, ""),
]


def csv_text(header: list[str], rows: list[tuple[object, ...]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def write_csv(path: Path, header: list[str], rows: list[tuple[object, ...]]) -> Path:
    path.write_text(csv_text(header, rows), encoding="utf-8", newline="")
    return path


def month_rows(rows: list[tuple[object, ...]], month: str) -> list[tuple[object, ...]]:
    return [r for r in rows if str(r[1]).startswith(month)]


def write_months(tmp: Path) -> dict[DatasetKind, list[Path]]:
    """The hand-made data as September and October 2026 Parquet files (no database)."""
    files: dict[DatasetKind, list[Path]] = {k: [] for k in DatasetKind}
    for month in ("2026-09", "2026-10"):
        for kind, header, rows in ((DatasetKind.prescriptions, RX_HEADER, RX),
                                   (DatasetKind.charges, CHARGE_HEADER, CHARGES)):
            src = write_csv(tmp / f"{kind}-{month}.csv", header, month_rows(rows, month))
            w = importing.write_dataset(src, kind=kind, hospital_code="h1",
                                        period=parse_period(month), analytics_dir=tmp / "a")
            files[kind].append(tmp / "a" / w.file)
    return files
