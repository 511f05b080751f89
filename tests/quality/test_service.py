"""Imports (all or nothing, re-import replaces), reviews and access, on the real database."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.quality import analyses, report
from onetrip.quality import service as quality_service
from onetrip.quality.importing import ImportRejected, MissingColumns
from onetrip.quality.models import DataImport
from onetrip.quality.rules import DatasetKind, Verdict, parse_period
from tests.factories import make_hospital
from tests.quality import handmade

OCT = parse_period("2026-10")


def _files(tmp: Path) -> set[Path]:
    return set(quality_service.analytics_dir().glob("**/*.parquet")) | set(tmp.glob("x"))


def test_malformed_rows_are_rejected_with_row_numbers_and_nothing_is_imported(
        db: Session, tmp_path: Path) -> None:
    h = make_hospital(db)
    rows = handmade.month_rows(handmade.RX, "2026-10")
    bad = [list(r) for r in rows]
    bad[2][14] = "两盒"            # 数量 on file line 4
    bad[5][8] = "夜诊"             # 就诊类型 on file line 7
    bad[6][1] = "2026-11-02 08:00"  # outside the month, line 8
    src = handmade.write_csv(tmp_path / "bad.csv", handmade.RX_HEADER,
                             [tuple(r) for r in bad])
    before = _files(tmp_path)
    with pytest.raises(ImportRejected) as err:
        quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                    period="2026-10", source=src)
    errors = err.value.detail["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [
        (4, "数量"), (7, "就诊类型"), (8, "开方时间")]
    assert err.value.detail["bad_rows"] == 3 and "第 4 行" in err.value.text
    assert db.scalar(select(func.count(DataImport.id)).where(
        DataImport.hospital_id == h.id)) == 0
    assert _files(tmp_path) == before


def test_blank_optional_fields_take_their_defaults(db: Session, tmp_path: Path) -> None:
    h = make_hospital(db)
    row = list(handmade.RX[2])
    row[16] = row[17] = row[18] = ""  # 用药天数, 给药途径, 抗菌药物级别 left blank
    src = handmade.write_csv(tmp_path / "blank.csv", handmade.RX_HEADER, [tuple(row)])
    quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                period="2026-10", source=src)
    line = analyses.prescription(db, h, "R1", OCT)[0]
    assert (line["days_supply"], line["route"], line["antibacterial_grade"]) == (
        None, "other", "none")


def test_missing_required_columns_are_named(db: Session, tmp_path: Path) -> None:
    h = make_hospital(db)
    src = handmade.write_csv(tmp_path / "few.csv", ["处方号", "通用名"], [("R1", "阿莫西林")])
    with pytest.raises(MissingColumns) as err:
        quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                    period="2026-10", source=src)
    assert "开方时间(prescribed_at)" in err.value.detail["missing"]


def test_reimporting_a_month_replaces_it(db: Session, handmade_hospital: Hospital,
                                         tmp_path: Path) -> None:
    h = handmade_hospital
    one = [r for r in handmade.RX if r[0] == "R1"]
    src = handmade.write_csv(tmp_path / "again.csv", handmade.RX_HEADER, one)
    row = quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                      period="2026-10", source=src)
    assert (row.rows, row.version) == (2, 2)
    ten, _ = analyses.double_ten(db, h, OCT)
    assert [d.drug_code for d in ten.by_amount] == ["OME", "AMX"]  # only R1 is left
    assert db.scalar(select(func.count(DataImport.id)).where(
        DataImport.hospital_id == h.id, DataImport.kind == "prescriptions")) == 2


def test_column_mapping_excel_and_parquet_imports(db: Session, tmp_path: Path) -> None:
    h = make_hospital(db)
    header = ["RXNO" if c == "处方号" else c for c in handmade.RX_HEADER]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(header)
    for r in handmade.month_rows(handmade.RX, "2026-10"):
        ws.append(list(r))
    wb.save(tmp_path / "rx.xlsx")
    row = quality_service.import_file(db, hospital=h, kind=DatasetKind.prescriptions,
                                      period="2026-10", source=tmp_path / "rx.xlsx",
                                      mapping={"prescription_id": "RXNO"})
    assert row.rows == 16 and row.mapping == {"prescription_id": "RXNO"}
    charges = handmade.month_rows(handmade.CHARGES, "2026-10")
    table = pa.table({name: [r[i] if r[i] != "" else None for r in charges]
                      for i, name in enumerate(handmade.CHARGE_HEADER)})
    pq.write_table(table, tmp_path / "charges.parquet")
    row = quality_service.import_file(db, hospital=h, kind=DatasetKind.charges,
                                      period="2026-10", source=tmp_path / "charges.parquet")
    assert row.rows == len(charges)
    rat = analyses.ratios(db, h, OCT)
    assert rat.total["drug_cost_ratio"] == pytest.approx(490 / 1860)


def test_qa2_ratio_report_ranks_departments_and_counts_reviews(
        db: Session, handmade_hospital: Hospital) -> None:
    h = handmade_hospital
    for rx in ("R2", "R3"):
        quality_service.mark(db, hospital=h, period="2026-10", verdict=Verdict.irrational,
                             reason="无正当理由超量", prescription_id=rx, reviewer="药师甲",
                             prescriber_code="D1" if rx == "R2" else "D2")
    rat = analyses.ratios(db, h, OCT)
    assert [d["code"] for d in rat.departments] == ["jz", "nk", "zyk"]  # 66.7%, 24.2%, 0%
    assert rat.shares["reviewed_share"] == pytest.approx(2 / 9)
    assert rat.trend[-1]["month"] == "2026-10" and len(rat.trend) == 12
    assert rat.trend[-2]["drug_cost_ratio"] == 1.0  # September: only a drug charge of 110
    people = quality_service.irrational_prescribers(db, h, ["2026-10"])
    assert [p["prescriber_code"] for p in people] == ["D1", "D2"]


def test_irrational_mark_needs_a_reason(db: Session, handmade_hospital: Hospital) -> None:
    with pytest.raises(quality_service.ReviewReasonRequired):
        quality_service.mark(db, hospital=handmade_hospital, period="2026-10",
                             verdict=Verdict.irrational, reason=" ", drug_code="CRO",
                             reviewer="药师")


def test_hospital_staff_see_only_their_hospital_and_the_regulator_sees_all(
        db: Session, handmade_hospital: Hospital) -> None:
    other = make_hospital(db)
    pharmacist = quality_service.viewer_for(
        db, Principal(role=Role.pharmacist, hospital_id=handmade_hospital.id))
    assert quality_service.access_hospital(db, pharmacist, None).id == handmade_hospital.id
    with pytest.raises(PermissionDenied):
        quality_service.access_hospital(db, pharmacist, other.code)
    regulator = quality_service.viewer_for(db, Principal(role=Role.regulator))
    assert quality_service.access_hospital(db, regulator, other.code).id == other.id
    assert not regulator.sees_patients and not regulator.may_review(handmade_hospital)
    with pytest.raises(PermissionDenied):
        quality_service.viewer_for(db, Principal(role=Role.doctor, hospital_id=other.id))


def test_workbook_has_the_sheets_a_medical_affairs_office_files(
        db: Session, handmade_hospital: Hospital, tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    report.build_workbook(db, handmade_hospital, OCT).save(path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["概览", "双十-金额前十", "双十-数量前十", "科室药占比耗占比",
                             "月度趋势", "合理用药检查", "不合理用药医生"]
    top = wb["双十-金额前十"]
    assert top["C2"].value == "注射用头孢曲松钠" and top["E2"].value == 240
    overview = {row[0]: row[1] for row in wb["概览"].iter_rows(min_row=5, values_only=True)}
    assert overview["药占比（不含中药饮片）"] == pytest.approx(490 / 1860)
    assert overview["急诊抗菌药物处方比例"] == 1.0


def test_demo_loaded_a_year_of_prescriptions_that_the_checks_flag(db: Session) -> None:
    h = db.scalar(select(Hospital).where(Hospital.code == "sfsrmyy"))
    assert h is not None
    months = {r.period for r in quality_service.list_imports(db, h)}
    assert len(months) == 12 and "2026-10" in months
    use = analyses.rational(db, h, OCT)
    assert sum(use.finding_counts.values()) > 0
    ten, _ = analyses.double_ten(db, h, OCT)
    assert len(ten.by_amount) == 10 and all(d.generic_name for d in ten.by_amount)
