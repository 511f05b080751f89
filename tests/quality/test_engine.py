"""Every indicator on the hand-made month (tests/quality/handmade.py), worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from onetrip.quality import engine
from onetrip.quality.rules import Check, DatasetKind, Thresholds, parse_period
from tests.quality import handmade

OCT = parse_period("2026-10")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    files = handmade.write_months(tmp_path_factory.mktemp("engine"))
    c = engine.open_engine(files[DatasetKind.prescriptions], files[DatasetKind.charges])
    yield c
    c.close()


def test_qa1_double_ten_by_amount_and_quantity(con: duckdb.DuckDBPyConnection) -> None:
    result = engine.double_ten(con, OCT)
    # Amounts per drug in October: CRO 80+160, OME 30+30+60, MEM 100, AML2 96, VIN 50,
    # LEV 20+20, AMX 20, HERB 20 (tie with AMX: drug code decides), ATV 15, ASP 12;
    # AML 8 and MET 5 fall off the list.
    assert [d.drug_code for d in result.by_amount] == [
        "CRO", "OME", "MEM", "AML2", "VIN", "LEV", "AMX", "HERB", "ATV", "ASP"]
    assert [d.amount for d in result.by_amount[:3]] == [240, 120, 100]
    assert result.total_amount == 726  # 240+120+100+96+50+40+20+20+15+12+8+5
    # Quantities: AML2 12, HERB 10, CRO 2+4, OME 1+1+2, AMX 2, LEV 1+1, then the ones by code.
    assert [d.drug_code for d in result.by_quantity] == [
        "AML2", "HERB", "CRO", "OME", "AMX", "LEV", "AML", "ASP", "ATV", "MEM"]
    ome = next(d for d in result.by_amount if d.drug_code == "OME")
    # September: OME 2×30 = 60 (rank 1 of 2), AMX 5×10 = 50 (rank 2).
    assert (ome.prev_amount, ome.prev_rank, ome.change) == (60, 1, 1.0)  # (120-60)/60
    amx = next(d for d in result.by_amount if d.drug_code == "AMX")
    assert amx.prev_rank == 2 and amx.change == pytest.approx(-0.6)  # (20-50)/50
    assert next(d for d in result.by_amount if d.drug_code == "CRO").prev_rank is None
    # AML2 and AML differ in code; AML2 comes only from D3.
    assert [c["prescriber_code"] for c in ome.contributors] == ["D1"]
    cro = result.by_amount[0]
    assert cro.contributors[0]["prescriber_name"] == "李医生" and cro.lines == 2


def test_qa1_double_ten_for_one_department_and_one_prescriber(
        con: duckdb.DuckDBPyConnection) -> None:
    jz = engine.double_ten(con, OCT, department="jz")
    assert [d.drug_code for d in jz.by_amount] == ["CRO", "LEV"]  # 80, 20
    d3 = engine.double_ten(con, OCT, prescriber="D3")
    assert [(d.drug_code, d.amount) for d in d3.by_amount] == [("AML2", 96), ("LEV", 20)]


def test_qa2_ratios_per_department(con: duckdb.DuckDBPyConnection) -> None:
    rows = {code: inc for month, code, _name, inc in engine.income(con, OCT.start, OCT.end)}
    nk = rows["nk"].indicators(exclude_herbal=True)
    # 内科: medical 80+230+1000+300 = 1610; drugs 50+120+160+60 = 390; consumables 10+100;
    # exams and labs 20+100+40 = 160.
    assert nk["drug_cost_ratio"] == pytest.approx(390 / 1610)
    assert nk["consumables_per_100"] == pytest.approx(100 * 110 / (1610 - 390))
    assert nk["consumables_ratio"] == pytest.approx(110 / 1610)
    assert nk["service_income_share"] == pytest.approx((1610 - 390 - 110 - 160) / 1610)
    jz = rows["jz"].indicators(exclude_herbal=True)
    assert jz["drug_cost_ratio"] == pytest.approx(100 / 150)
    assert jz["consumables_per_100"] == pytest.approx(40.0)  # 100×20/(150−100)
    # 中医科: only herbal pieces as drugs: excluded by default, included when configured.
    assert rows["zyk"].indicators(exclude_herbal=True)["drug_cost_ratio"] == 0
    assert rows["zyk"].indicators(exclude_herbal=False)["drug_cost_ratio"] == pytest.approx(0.2)
    total = engine.Income()
    for inc in rows.values():
        total.add(inc)
    hospital = total.indicators(exclude_herbal=True)
    assert hospital["drug_cost_ratio"] == pytest.approx((510 - 20) / 1860)
    assert hospital["consumables_per_100"] == pytest.approx(100 * 130 / (1860 - 510))


def test_qa2_vbp_key_drug_and_essential_shares(con: duckdb.DuckDBPyConnection) -> None:
    shares = engine.drug_shares(con, OCT.start, OCT.end, ["长春西汀", "奥拉西坦"])
    ind = shares.indicators()
    # 集采 generics: 阿莫西林 (2), 阿托伐他汀 (1), 二甲双胍 (1), 氨氯地平 (AML 1 selected,
    # AML2 12 not selected): 5 of 17 units; amounts 20+15+5+8 = 48 of 48+96 = 144.
    assert ind["vbp_volume_share"] == pytest.approx(5 / 17)
    assert ind["vbp_amount_share"] == pytest.approx(48 / 144)
    # Key-monitored: 长春西汀注射液 50 of all drug amount 726.
    assert ind["key_drug_share"] == pytest.approx(50 / 726)
    # Outpatient visits V1 V2 V4 V5 V6 V9; with an essential drug V1 V2 V4.
    assert (shares.outpatient_visits, shares.essential_visits) == (6, 3)
    assert ind["essential_visit_share"] == 0.5
    assert shares.prescriptions == 9


def test_qa3_rational_use_checks_and_antibacterial_indicators(
        con: duckdb.DuckDBPyConnection) -> None:
    result = engine.rational(con, OCT.start, OCT.end, Thresholds(),
                             privileges=[("D1", "special")], ddd=[("CRO", 2.0, 1.0)])
    ind = result.indicators
    # Outpatient prescriptions R1 R2 R4 R5 R6 R9; with an antibacterial R1 R5 R6.
    assert ind["outpatient_antibacterial_rate"] == 0.5
    assert ind["emergency_antibacterial_rate"] == 1.0  # R3 of R3
    assert ind["inpatient_antibacterial_rate"] == 0.5  # V7 of V7 V8
    # CRO 4 vials × 1 g / 2 g DDD = 2 DDDs over 6+4 bed-days: 2/10×100.
    assert ind["antibacterial_intensity"] == pytest.approx(20.0)
    assert ind["outpatient_injection_rate"] == pytest.approx(2 / 6)  # R2 (VIN), R6 (MEM)
    found = {check: [f["prescription_id"] for f in rows]
             for check, rows in result.findings.items()}
    assert found == {
        Check.big_prescription: ["R2"],                # 6 drugs
        Check.over_supply: ["R2", "R3"],               # VIN 10 days; emergency 5 days
        Check.long_term_over: ["R4"],                  # 90 days > 84
        Check.long_term_forbidden: ["R5"],             # antibacterial on a long prescription
        Check.multiple_antibacterials: ["R3"],         # CRO + LEV
        Check.special_in_outpatient: ["R6"],           # 美罗培南 in clinic
        Check.no_privilege: ["R3", "R7"],              # D2 holds no restricted privilege
    }
    assert [(p["prescriber_code"], p["findings"]) for p in result.prescribers] == [
        ("D1", 2), ("D2", 2), ("D3", 2)]
    assert result.lines_without_ddd == 0


def test_qa3_thresholds_are_configurable(con: duckdb.DuckDBPyConnection) -> None:
    loose = Thresholds.with_overrides({"max_drugs_per_prescription": 6,
                                       "max_days_supply_emergency": 5})
    result = engine.rational(con, OCT.start, OCT.end, loose)
    assert result.finding_counts[Check.big_prescription] == 0
    assert [f["prescription_id"] for f in result.findings[Check.over_supply]] == ["R2"]
    # Without a privilege row every prescriber may only prescribe unrestricted ones.
    assert result.finding_counts[Check.no_privilege] == 3
    with pytest.raises(ValueError):
        Thresholds.with_overrides({"no_such": 1})


def test_prescription_lines_link_a_finding_to_its_drugs(
        con: duckdb.DuckDBPyConnection) -> None:
    lines = engine.prescription_lines(con, "R3")
    assert [(x["drug_code"], x["antibacterial_grade"]) for x in lines] == [
        ("CRO", "restricted"), ("LEV", "unrestricted")]
