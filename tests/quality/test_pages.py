"""Quality pages in Chinese: dashboard with charts, double ten, findings linking to their
prescriptions, review from the page, import errors with row numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from onetrip.quality import service as quality_service
from onetrip.quality.models import DataImport
from onetrip.quality.rules import DatasetKind
from tests.factories import make_hospital, make_token
from tests.quality import handmade


def _sign_in(client: TestClient, db: Session, role: Role, hospital: Hospital | None) -> None:
    token = make_token(db, role, hospital)
    db.commit()
    client.post("/staff/sign-in", data={"token": token, "next": "/"})


def test_dashboard_needs_sign_in_and_shows_indicators_and_charts(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    r = client.get("/quality")
    assert r.status_code == 401 and "去登录" in r.text
    _sign_in(client, db, Role.hospital_admin, handmade_hospital)
    html = client.get("/quality", params={"period": "2026-10"}).text
    assert "处方与费用分析 · 手工医院" in html and "药占比（不含中药饮片）" in html
    assert "26.34%" in html  # 490 / 1860
    assert "/static/vendor/echarts/echarts.min.js" in html and 'id="chart-trend"' in html
    assert "导入HIS数据" in html


def test_findings_link_to_their_prescriptions_and_a_pharmacist_marks_one(
        client: TestClient, db: Session, handmade_hospital: Hospital) -> None:
    _sign_in(client, db, Role.pharmacist, handmade_hospital)
    html = client.get("/quality/rational",
                      params={"hospital": "hm1", "period": "2026-10",
                              "check": "no_privilege"}).text
    assert "医生无相应级别抗菌药物处方权（共 2 张）" in html
    assert '/quality/prescriptions/R7?hospital=hm1&amp;period=2026-10' in html
    page = client.get("/quality/prescriptions/R7",
                      params={"hospital": "hm1", "period": "2026-10"}).text
    assert "注射用头孢曲松钠" in page and "限制使用级" in page and "P7" in page
    r = client.post("/quality/reviews", data={
        "hospital": "hm1", "period": "2026-10", "verdict": "irrational",
        "reason": "抗菌药物越级使用", "prescription_id": "R7"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == (
        "/quality/prescriptions/R7?hospital=hm1&period=2026-10&flash=reviewed")
    r = client.get(r.headers["location"])
    assert r.status_code == 200 and "已保存点评结果" in r.text
    assert 'data-verdict="irrational"' in r.text
    ten = client.get("/quality/double-ten", params={"hospital": "hm1", "period": "2026-10"})
    assert "不合理用药医生" in ten.text and "抗菌药物越级使用" in ten.text


def test_import_errors_are_listed_by_row_on_the_page(
        client: TestClient, db: Session, handmade_hospital: Hospital, tmp_path: Path) -> None:
    _sign_in(client, db, Role.pharmacist, handmade_hospital)
    rows: list[Any] = [list(r) for r in handmade.month_rows(handmade.RX, "2026-10")]
    rows[0][18] = "超级"
    src = handmade.write_csv(tmp_path / "rx.csv", handmade.RX_HEADER, rows)
    r = client.post("/quality/imports", data={"hospital": "hm1", "kind": "prescriptions",
                                              "period": "2026-10"},
                    files={"file": ("rx.csv", src.read_bytes(), "text/csv")})
    assert r.status_code == 422 and "第2行" in r.text and "抗菌药物级别" in r.text


def test_an_import_from_the_page_says_what_was_stored(
        client: TestClient, db: Session, handmade_hospital: Hospital, tmp_path: Path) -> None:
    _sign_in(client, db, Role.pharmacist, handmade_hospital)
    rows = handmade.month_rows(handmade.RX, "2026-10")
    src = handmade.write_csv(tmp_path / "rx.csv", handmade.RX_HEADER, rows)
    r = client.post("/quality/imports", data={"hospital": "hm1", "kind": "prescriptions",
                                              "period": "2026-10"},
                    files={"file": ("rx.csv", src.read_bytes(), "text/csv")},
                    follow_redirects=False)
    row = db.query(DataImport).filter_by(hospital_id=handmade_hospital.id,
                                         kind="prescriptions", period="2026-10").one()
    assert r.status_code == 303 and r.headers["location"] == (
        f"/quality?hospital=hm1&period=2026-10&flash=imported&import_id={row.id}")
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and f"已导入处方明细 {len(rows)} 行（2026-10）" in page.text


FORGED = "系统升级，请立即拨打4008001234重新登记"


def test_quality_pages_show_no_text_a_link_brings(
        client: TestClient, db: Session, handmade_hospital: Hospital, tmp_path: Path) -> None:
    """A link anyone can send must not make these pages say something OneTrip did not."""
    elsewhere = make_hospital(db)
    src = handmade.write_csv(tmp_path / "rx.csv", handmade.RX_HEADER,
                             handmade.month_rows(handmade.RX, "2026-10"))
    theirs = quality_service.import_file(db, hospital=elsewhere, kind=DatasetKind.prescriptions,
                                         period="2026-10", source=src)
    db.commit()
    _sign_in(client, db, Role.pharmacist, handmade_hospital)
    scope = {"hospital": "hm1", "period": "2026-10"}
    for path in ("/quality", "/quality/double-ten", "/quality/prescriptions/R7"):
        for extra in ({"flash": FORGED}, {"flash": "imported", "import_id": FORGED},
                      {"flash": "imported", "import_id": str(theirs.id)},
                      {"flash": "imported", "import_id": "99999999999999999999"}):
            r = client.get(path, params={**scope, **extra})
            assert r.status_code == 200 and FORGED not in r.text, (path, extra)
            assert "已导入处方明细" not in r.text, (path, extra)


@pytest.mark.parametrize(("role", "linked"), [(Role.regulator, True), (Role.hospital_admin, True),
                                              (Role.pharmacist, False)])
def test_the_quality_pages_link_the_booking_indicators_for_who_may_see_them(
        client: TestClient, db: Session, handmade_hospital: Hospital, role: Role,
        linked: bool) -> None:
    _sign_in(client, db, role, None if role is Role.regulator else handmade_hospital)
    page = client.get("/quality", params={"hospital": "hm1", "period": "2026-10"})
    assert page.status_code == 200
    assert ('href="/console/indicators"' in page.text) is linked
    if linked:
        assert client.get("/console/indicators").status_code == 200
