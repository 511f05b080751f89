"""/api/v1/quality: roles, JSON shapes, reviews, imports with row errors, the workbook."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import auth, make_hospital, make_token
from tests.quality import handmade


def test_signed_out_and_other_roles_are_refused(client: TestClient, db: Session,
                                                handmade_hospital: Hospital) -> None:
    r = client.get("/api/v1/quality/hm1/ratios", params={"period": "2026-10"})
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    doctor = make_token(db, Role.doctor, handmade_hospital)
    r = client.get("/api/v1/quality/hm1/ratios", params={"period": "2026-10"},
                   headers=auth(doctor))
    assert r.status_code == 403
    other = make_token(db, Role.pharmacist, make_hospital(db))
    r = client.get("/api/v1/quality/hm1/ratios", params={"period": "2026-10"},
                   headers=auth(other))
    assert r.status_code == 403 and r.json()["message"] == "无权查看其他医院的处方与费用数据"


def test_pharmacist_reads_the_analyses_and_marks_a_prescription(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    h = auth(make_token(db, Role.pharmacist, handmade_hospital))
    db.commit()
    ten = client.get("/api/v1/quality/hm1/double-ten", params={"period": "2026-10"},
                     headers=h).json()
    assert ten["by_amount"][0]["generic_name"] == "注射用头孢曲松钠"
    rat = client.get("/api/v1/quality/hm1/ratios", params={"period": "2026-10"},
                     headers=h).json()
    assert rat["departments"][0]["code"] == "jz"
    use = client.get("/api/v1/quality/hm1/rational", params={"period": "2026-10"},
                     headers=h).json()
    assert use["findings"]["no_privilege"]["total"] == 2
    found = client.get("/api/v1/quality/hm1/findings/over_supply",
                       params={"period": "2026-10"}, headers=h).json()
    assert [p["prescription_id"] for p in found["prescriptions"]] == ["R2", "R3"]
    bad = client.post("/api/v1/quality/hm1/reviews", headers=h, json={
        "period": "2026-10", "verdict": "irrational", "prescription_id": "R3"})
    assert bad.status_code == 422 and bad.json()["code"] == "quality_reason_required"
    ok = client.post("/api/v1/quality/hm1/reviews", headers=h, json={
        "period": "2026-10", "verdict": "irrational", "reason": "联合用药不适宜",
        "prescription_id": "R3"})
    assert ok.status_code == 201 and ok.json()["prescriber_code"] == "D2"
    people = client.get("/api/v1/quality/hm1/irrational-prescribers",
                        params={"period": "2026-10"}, headers=h).json()
    assert people[0]["prescriber_name"] == "李医生"
    rat = client.get("/api/v1/quality/hm1/ratios", params={"period": "2026-10"},
                     headers=h).json()
    assert abs(rat["shares"]["reviewed_share"] - 1 / 9) < 1e-9


def test_regulator_sees_the_region_but_no_patient_ids_and_cannot_review(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    h = auth(make_token(db, Role.regulator))
    db.commit()
    region = client.get("/api/v1/quality/region", params={"period": "2026-10"},
                        headers=h).json()
    assert {"sfsrmyy", "hm1"} <= {r["hospital"] for r in region}
    rx = client.get("/api/v1/quality/hm1/prescriptions/R1", params={"period": "2026-10"},
                    headers=h).json()
    assert rx["lines"] and all("patient_id" not in line for line in rx["lines"])
    r = client.post("/api/v1/quality/hm1/reviews", headers=h, json={
        "period": "2026-10", "verdict": "rational", "drug_code": "CRO"})
    assert r.status_code == 403


def test_upload_with_a_bad_row_reports_the_row_and_imports_nothing(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    hospital = make_hospital(db)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    rows = [list(r) for r in handmade.month_rows(handmade.CHARGES, "2026-10")]
    rows[3][6] = "一百"
    src = handmade.write_csv(tmp_path / "c.csv", handmade.CHARGE_HEADER,
                             [tuple(r) for r in rows])
    url = f"/api/v1/quality/{hospital.code}/imports"
    r = client.post(url, headers=h, data={"kind": "charges", "period": "2026-10"},
                    files={"file": ("c.csv", src.read_bytes(), "text/csv")})
    assert r.status_code == 422 and r.json()["detail"]["errors"] == [
        {"row": 5, "field": "金额", "message": "应为数字，绝对值不超过10亿"}]
    assert client.get(url, headers=h).json() == []
    rows[3][6] = 100
    src = handmade.write_csv(tmp_path / "c.csv", handmade.CHARGE_HEADER,
                             [tuple(r) for r in rows])
    r = client.post(url, headers=h, data={"kind": "charges", "period": "2026-10"},
                    files={"file": ("c.csv", src.read_bytes(), "text/csv")})
    assert r.status_code == 201 and r.json()["rows"] == len(rows)


def test_workbook_download(client: TestClient, db: Session,
                           handmade_hospital: Hospital) -> None:
    h = auth(make_token(db, Role.hospital_admin, handmade_hospital))
    r = client.get("/api/v1/quality/hm1/report.xlsx", params={"period": "2026-Q4"},
                   headers=h)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert "quality-hm1-2026-Q4.xlsx" in r.headers["content-disposition"]
