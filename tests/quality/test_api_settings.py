"""The settings the QA-3 self-inspection reads (a prescriber's antibacterial privilege, a
product's DDD) and the key-monitored catalogue (国考#32), changed over the API; the monthly
workbook downloaded from the quality pages."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from onetrip.quality.models import DrugDDD, KeyMonitoredDrug, PrescriberPrivilege
from tests.factories import auth, make_hospital, make_token
from tests.identity.test_privacy import MOBILE, RESIDENT_ID
from tests.quality import handmade

OCT = {"period": "2026-10"}


def _rational(client: TestClient, headers: dict[str, str], code: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/quality/{code}/rational", params=OCT, headers=headers)
    assert r.status_code == 200, r.text
    assert not RESIDENT_ID.search(r.text) and not MOBILE.search(r.text)
    body: dict[str, Any] = r.json()
    return body


def _amount(row: tuple[object, ...]) -> float:
    """A prescription line's amount: quantity × unit price (columns 数量, 单价)."""
    return float(str(row[14])) * float(str(row[15]))


def _privileges(db: Session, hospital: Hospital) -> dict[str, str]:
    db.expire_all()
    rows = db.scalars(select(PrescriberPrivilege).where(
        PrescriberPrivilege.hospital_id == hospital.id))
    return {p.prescriber_code: p.max_grade for p in rows}


def _ddd(db: Session, hospital: Hospital) -> dict[str, tuple[float, float]]:
    db.expire_all()
    return {d.drug_code: (d.ddd_g, d.unit_g) for d in db.scalars(
        select(DrugDDD).where(DrugDDD.hospital_id == hospital.id))}


def test_qa3_granting_a_privilege_clears_that_prescribers_findings(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    h = auth(make_token(db, Role.pharmacist, handmade_hospital))
    before = _rational(client, h, handmade_hospital.code)["findings"]["no_privilege"]
    theirs = [p for p in before["prescriptions"] if p["prescriber_code"] == "D2"]
    assert theirs, "the hand-made month has D2 prescribing above its privilege"
    url = f"/api/v1/quality/{handmade_hospital.code}/privileges"
    r = client.put(url, headers=h, json={"prescriber_code": "D2", "prescriber_name": "李医生",
                                         "max_grade": "restricted"})
    assert r.status_code == 204 and r.content == b""
    assert _privileges(db, handmade_hospital)["D2"] == "restricted"
    after = _rational(client, h, handmade_hospital.code)["findings"]["no_privilege"]
    assert after["total"] == before["total"] - len(theirs)
    assert all(p["prescriber_code"] != "D2" for p in after["prescriptions"])


def test_qa3_a_privilege_is_refused_with_its_code_and_changes_nothing(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    url = f"/api/v1/quality/{handmade_hospital.code}/privileges"
    body = {"prescriber_code": "D2", "max_grade": "special"}
    before = _privileges(db, handmade_hospital)
    bad = client.put(url, headers=auth(make_token(db, Role.pharmacist, handmade_hospital)),
                     json={**body, "max_grade": "none"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    for headers in (auth(make_token(db, Role.doctor, handmade_hospital)),
                    auth(make_token(db, Role.regulator)),
                    auth(make_token(db, Role.pharmacist, make_hospital(db)))):
        r = client.put(url, headers=headers, json=body)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert client.put(url, json=body).status_code == 401
    assert _privileges(db, handmade_hospital) == before


def test_qa3_changing_a_ddd_changes_the_antibacterial_intensity(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    """Intensity = DDDs per 100 patient-days, DDDs = quantity × unit / DDD: doubling the DDD
    of the one inpatient antibacterial halves it."""
    h = auth(make_token(db, Role.hospital_admin, handmade_hospital))
    old_ddd, unit = _ddd(db, handmade_hospital)["CRO"]
    before = _rational(client, h, handmade_hospital.code)["indicators"]
    assert before["antibacterial_intensity"] > 0
    url = f"/api/v1/quality/{handmade_hospital.code}/ddd"
    r = client.put(url, headers=h, json={"drug_code": "CRO", "generic_name": "注射用头孢曲松钠",
                                         "ddd_g": old_ddd * 2, "unit_g": unit})
    assert r.status_code == 204
    assert _ddd(db, handmade_hospital)["CRO"] == (old_ddd * 2, unit)
    after = _rational(client, h, handmade_hospital.code)["indicators"]
    assert after["ddds"] == pytest.approx(before["ddds"] / 2)
    assert after["patient_days"] == before["patient_days"]
    assert after["antibacterial_intensity"] == pytest.approx(
        before["antibacterial_intensity"] / 2)


def test_qa3_a_bad_ddd_or_another_hospitals_admin_is_refused(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    url = f"/api/v1/quality/{handmade_hospital.code}/ddd"
    before = _ddd(db, handmade_hospital)
    own = auth(make_token(db, Role.hospital_admin, handmade_hospital))
    for body in ({"drug_code": "CRO", "ddd_g": 0, "unit_g": 1.0},
                 {"drug_code": "", "ddd_g": 1.0, "unit_g": 1.0}):
        r = client.put(url, headers=own, json=body)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", body
    far = auth(make_token(db, Role.hospital_admin, make_hospital(db)))
    r = client.put(url, headers=far, json={"drug_code": "CRO", "ddd_g": 9.0, "unit_g": 1.0})
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert _ddd(db, handmade_hospital) == before


def test_key_drugs_catalogue_is_the_regional_admins_and_moves_the_share(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    """国考#32: income from key-monitored drugs / drug income."""
    name = "阿托伐他汀钙片"
    assert db.scalar(select(KeyMonitoredDrug).where(
        KeyMonitoredDrug.generic_name == name)) is None
    october = [r for r in handmade.RX if str(r[1]).startswith(OCT["period"])]
    amount = sum(_amount(r) for r in october if r[13] == name)
    total = sum(_amount(r) for r in october)
    pharmacist = auth(make_token(db, Role.pharmacist, handmade_hospital))
    url = f"/api/v1/quality/{handmade_hospital.code}/ratios"
    before = client.get(url, params=OCT, headers=pharmacist).json()["shares"]["key_drug_share"]
    body = {"generic_name": name, "catalogue": "测试目录", "active": True}
    for headers in (pharmacist, auth(make_token(db, Role.hospital_admin, handmade_hospital)),
                    auth(make_token(db, Role.regulator))):
        r = client.put("/api/v1/quality/key-drugs", headers=headers, json=body)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    blank = client.put("/api/v1/quality/key-drugs", json={"generic_name": ""},
                       headers=auth(make_token(db, Role.regional_admin)))
    assert blank.status_code == 422 and blank.json()["code"] == "invalid_request"
    assert db.scalar(select(KeyMonitoredDrug).where(
        KeyMonitoredDrug.generic_name == name)) is None
    ok = client.put("/api/v1/quality/key-drugs", json=body,
                    headers=auth(make_token(db, Role.regional_admin)))
    assert ok.status_code == 204
    db.expire_all()
    row = db.scalars(select(KeyMonitoredDrug).where(KeyMonitoredDrug.generic_name == name)).one()
    assert (row.catalogue, row.active) == ("测试目录", True)
    after = client.get(url, params=OCT, headers=pharmacist).json()["shares"]["key_drug_share"]
    assert after == pytest.approx(before + amount / total)


def test_the_workbook_page_downloads_an_excel_file_named_for_hospital_and_period(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    r = client.get("/quality/report.xlsx", params=OCT)
    assert r.status_code == 401
    client.cookies.set("onetrip_token", make_token(db, Role.hospital_admin, handmade_hospital))
    r = client.get("/quality/report.xlsx", params={"hospital": handmade_hospital.code,
                                                   "period": "2026-Q4"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="quality-{handmade_hospital.code}-2026-Q4.xlsx"')
    latest = client.get("/quality/report.xlsx")  # own hospital, its latest imported month
    assert latest.status_code == 200 and latest.content[:2] == b"PK"
    assert f"quality-{handmade_hospital.code}-2026-10.xlsx" in latest.headers[
        "content-disposition"]
    elsewhere = client.get("/quality/report.xlsx", params={"hospital": "sfsrmyy"})
    assert elsewhere.status_code == 403
