"""Bad input found by fuzzing gets a clear error and changes nothing: periods at the ends
of the calendar or in full-width digits, unreadable import files, mappings that are not a
JSON object of strings."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org import service as org_service
from onetrip.org.models import Hospital
from onetrip.quality import service as quality_service
from onetrip.quality.models import DataImport, Review
from onetrip.quality.rules import DatasetKind, parse_period
from tests.factories import auth, make_hospital, make_token
from tests.quality import handmade

# --- periods ----------------------------------------------------------------------------------

REJECTED_PERIODS = ["9999-W52", "9999-12", "0001-01", "0001-Q1", "0001-W01", "1899-12",
                    "2201-01", "２０２６-１０", "２０２６-Q４", "2026-W４３"]
#: The first and last periods accepted: their previous periods and trends leave the range.
EDGE_PERIODS = ["1900-01", "1900-Q1", "1900-W01", "2200-12", "2200-Q4", "2200-W52"]
API_READS = ["double-ten", "ratios", "rational", "findings/over_supply", "prescriptions/R1",
             "irrational-prescribers", "report.xlsx"]
PAGES = ["/quality", "/quality/double-ten", "/quality/rational", "/quality/prescriptions/R1",
         "/quality/report.xlsx"]


@pytest.mark.parametrize("text", REJECTED_PERIODS)
def test_parse_period_refuses_years_outside_1900_2200_and_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


def test_the_edge_periods_reach_back_past_1900() -> None:
    assert parse_period("1900-01").previous().label == "1899-12"
    assert parse_period("1900-Q1").previous().label == "1899-Q4"
    assert parse_period("1900-W01").previous().label == "1899-W52"


def _sfsrmyy(db: Session) -> Hospital:
    return org_service.access_hospital(db, "sfsrmyy")


def _reviews(db: Session, hospital: Hospital) -> int:
    return db.scalar(select(func.count(Review.id)).where(Review.hospital_id == hospital.id)) or 0


@pytest.mark.parametrize("period", REJECTED_PERIODS)
def test_every_quality_read_refuses_the_period(client: TestClient, db: Session,
                                               period: str) -> None:
    h = auth(make_token(db, Role.regional_admin))
    db.commit()
    for path in ["region", *(f"sfsrmyy/{read}" for read in API_READS)]:
        r = client.get(f"/api/v1/quality/{path}", params={"period": period}, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["code"] == "quality_invalid_period", path


@pytest.mark.parametrize("period", REJECTED_PERIODS)
def test_every_quality_page_refuses_the_period(client: TestClient, db: Session,
                                               period: str) -> None:
    token = make_token(db, Role.regional_admin)
    db.commit()
    client.post("/staff/sign-in", data={"token": token, "next": "/"})
    for path in PAGES:
        r = client.get(path, params={"hospital": "sfsrmyy", "period": period})
        assert r.status_code == 422 and "期间格式应为" in r.text, (path, r.status_code)


@pytest.mark.parametrize("period", EDGE_PERIODS)
def test_the_edge_periods_are_analysed(client: TestClient, db: Session, period: str) -> None:
    h = auth(make_token(db, Role.regional_admin))
    db.commit()
    for read in ("double-ten", "ratios", "rational", "report.xlsx"):
        r = client.get(f"/api/v1/quality/sfsrmyy/{read}", params={"period": period},
                       headers=h)
        assert r.status_code == 200, (read, r.text)


@pytest.mark.parametrize("period", REJECTED_PERIODS)
@pytest.mark.parametrize("target", [{"drug_code": "AMX"}, {"prescription_id": "R1"}])
def test_a_review_of_a_bad_period_is_refused_and_stores_nothing(
        client: TestClient, db: Session, period: str, target: dict[str, str]) -> None:
    hospital = _sfsrmyy(db)
    h = auth(make_token(db, Role.pharmacist, hospital))
    db.commit()
    before = _reviews(db, hospital)
    r = client.post("/api/v1/quality/sfsrmyy/reviews", headers=h,
                    json={"period": period, "verdict": "rational", **target})
    assert r.status_code == 422 and r.json()["code"] == "quality_invalid_period"
    assert _reviews(db, hospital) == before


def test_a_review_from_the_page_of_a_bad_period_is_refused(client: TestClient,
                                                           db: Session) -> None:
    hospital = _sfsrmyy(db)
    token = make_token(db, Role.pharmacist, hospital)
    db.commit()
    client.post("/staff/sign-in", data={"token": token, "next": "/"})
    before = _reviews(db, hospital)
    r = client.post("/quality/reviews", data={"hospital": "sfsrmyy", "period": "9999-W52",
                                              "verdict": "rational", "drug_code": "AMX"})
    assert r.status_code == 422 and "期间格式应为" in r.text
    assert _reviews(db, hospital) == before


# --- imports ----------------------------------------------------------------------------------


def _good_csv() -> bytes:
    return handmade.csv_text(handmade.RX_HEADER,
                             handmade.month_rows(handmade.RX, "2026-10")).encode("utf-8")


def _zip_without_workbook() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return buf.getvalue()


def _workbook(edit: Callable[[str, bytes], bytes]) -> bytes:
    """A workbook openpyxl writes, its archive members passed through ``edit``."""
    saved = io.BytesIO()
    Workbook().save(saved)
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            z.writestr(name, edit(name, src.read(name)))
    return out.getvalue()


def _without_sheets(name: str, data: bytes) -> bytes:
    return re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", data) if name == "xl/workbook.xml" \
        else data


def _sheet_not_xml(name: str, data: bytes) -> bytes:
    return b"<<<" if name.startswith("xl/worksheets/") else data


def _parquet_with_a_nested_column() -> bytes:
    """Every column of the good file, the prescription number as a struct."""
    table = pacsv.read_csv(io.BytesIO(_good_csv()))
    nested = pa.array([{"id": str(v)} for v in table["处方号"].to_pylist()])
    out = io.BytesIO()
    pq.write_table(table.set_column(0, "处方号", nested), out)
    return out.getvalue()


def _bad_bytes_after_the_sample() -> bytes:
    """Valid UTF-8 for the first 64 KiB (the encoding sample), then a byte that is not."""
    good = _good_csv()
    lines = good.splitlines(keepends=True)
    body = b"".join(lines[1:])
    return lines[0] + body * (70_000 // len(body) + 1) + b"\xff\xfe\n"


UNSUPPORTED = "quality_unsupported_file"
BAD_MAPPING = "quality_invalid_mapping"
BAD_UPLOADS = {
    "xlsx-not-a-zip": ("rx.xlsx", b"PK\x03\x04garbage", "", UNSUPPORTED),
    "xlsx-zip-without-workbook": ("rx.xlsx", _zip_without_workbook(), "", UNSUPPORTED),
    "xlsx-without-sheets": ("rx.xlsx", _workbook(_without_sheets), "", UNSUPPORTED),
    "xlsx-sheet-not-xml": ("rx.xlsx", _workbook(_sheet_not_xml), "", UNSUPPORTED),
    "csv-utf16-bom": ("rx.csv", b"\xff\xfe\x00\x00\xff\xfe", "", UNSUPPORTED),
    "csv-bad-bytes-late": ("rx.csv", _bad_bytes_after_the_sample(), "", UNSUPPORTED),
    "parquet-junk": ("rx.parquet", b"PAR1 this is no parquet PAR1", "", UNSUPPORTED),
    "parquet-nested-column": ("rx.parquet", _parquet_with_a_nested_column(), "",
                              UNSUPPORTED),
    "mapping-list": ("rx.csv", _good_csv(), "[1]", BAD_MAPPING),
    "mapping-number": ("rx.csv", _good_csv(), "1", BAD_MAPPING),
    "mapping-null": ("rx.csv", _good_csv(), "null", BAD_MAPPING),
    "mapping-text": ("rx.csv", _good_csv(), '"处方编号"', BAD_MAPPING),
    "mapping-number-value": ("rx.csv", _good_csv(), '{"prescription_id": 1}', BAD_MAPPING),
    "mapping-not-json": ("rx.csv", _good_csv(), "{", BAD_MAPPING),
    "mapping-deep": ("rx.csv", _good_csv(), "[" * 3000, BAD_MAPPING),
}


def _hospital_with_october(db: Session, tmp_path: Path) -> Hospital:
    """A fresh hospital whose October prescriptions are imported (the bad upload must not
    replace them)."""
    hospital = make_hospital(db)
    src = tmp_path / "good.csv"
    src.write_bytes(_good_csv())
    quality_service.import_file(db, hospital=hospital, kind=DatasetKind.prescriptions,
                                period="2026-10", source=src)
    return hospital


def _stored(db: Session, hospital: Hospital) -> tuple[list[tuple[object, ...]], list[Path]]:
    """The import rows of a hospital and every file under its analytics folders."""
    rows = [tuple(r) for r in db.execute(
        select(DataImport.id, DataImport.kind, DataImport.period, DataImport.file,
               DataImport.version, DataImport.rows)
        .where(DataImport.hospital_id == hospital.id).order_by(DataImport.id))]
    base = quality_service.analytics_dir()
    files = sorted(p for kind in DatasetKind
                   for p in (base / kind.value / hospital.code).rglob("*") if p.is_file())
    return rows, files


@pytest.mark.parametrize(("name", "content", "mapping", "code"), BAD_UPLOADS.values(),
                         ids=BAD_UPLOADS.keys())
def test_a_bad_upload_is_refused_and_imports_nothing(
        client: TestClient, db: Session, tmp_path: Path, name: str, content: bytes,
        mapping: str, code: str) -> None:
    hospital = _hospital_with_october(db, tmp_path)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    before = _stored(db, hospital)
    r = client.post(f"/api/v1/quality/{hospital.code}/imports", headers=h,
                    data={"kind": "prescriptions", "period": "2026-10", "mapping": mapping},
                    files={"file": (name, content, "application/octet-stream")})
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert _stored(db, hospital) == before


@pytest.mark.parametrize(("name", "content", "mapping", "code"), BAD_UPLOADS.values(),
                         ids=BAD_UPLOADS.keys())
def test_a_bad_upload_on_the_page_says_why_in_chinese(
        client: TestClient, db: Session, tmp_path: Path, name: str, content: bytes,
        mapping: str, code: str) -> None:
    hospital = _hospital_with_october(db, tmp_path)
    token = make_token(db, Role.hospital_admin, hospital)
    db.commit()
    client.post("/staff/sign-in", data={"token": token, "next": "/"})
    before = _stored(db, hospital)
    r = client.post("/quality/imports",
                    data={"hospital": hospital.code, "kind": "prescriptions",
                          "period": "2026-10", "mapping": mapping},
                    files={"file": (name, content, "application/octet-stream")})
    assert r.status_code == 422 and "导入失败" in r.text and f'data-code="{code}"' in r.text
    assert _stored(db, hospital) == before


def test_an_import_of_a_bad_period_is_refused_and_imports_nothing(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    hospital = _hospital_with_october(db, tmp_path)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    before = _stored(db, hospital)
    for period in REJECTED_PERIODS:
        r = client.post(f"/api/v1/quality/{hospital.code}/imports", headers=h,
                        data={"kind": "prescriptions", "period": period},
                        files={"file": ("rx.csv", _good_csv(), "text/csv")})
        assert r.status_code == 422 and r.json()["code"] == "quality_invalid_period", period
    assert _stored(db, hospital) == before


def test_a_mapping_that_is_not_an_object_is_refused_by_the_service(
        db: Session, tmp_path: Path) -> None:
    hospital = _hospital_with_october(db, tmp_path)
    before = _stored(db, hospital)
    src = tmp_path / "rx.csv"
    src.write_bytes(_good_csv())
    with pytest.raises(quality_service.InvalidMapping):
        quality_service.import_file(db, hospital=hospital, kind=DatasetKind.prescriptions,
                                    period="2026-10", source=src,
                                    mapping=["prescription_id"])  # type: ignore[arg-type]
    assert _stored(db, hospital) == before


def test_a_parquet_file_with_a_nested_column_no_field_uses_is_imported(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    """A HIS export may carry columns OneTrip does not read, of any type: only the columns
    the mapping uses must be text or numbers."""
    hospital = _hospital_with_october(db, tmp_path)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    table = pacsv.read_csv(io.BytesIO(_good_csv()))
    extra = pa.array([{"备注": "x", "标签": [1, 2]}] * table.num_rows)
    out = io.BytesIO()
    pq.write_table(table.append_column("扩展信息", extra), out)
    r = client.post(f"/api/v1/quality/{hospital.code}/imports", headers=h,
                    data={"kind": "prescriptions", "period": "2026-10"},
                    files={"file": ("rx.parquet", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == table.num_rows


def test_an_upload_named_with_a_long_extension_is_refused_as_unsupported(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    """The client's extension named the temporary file: 300 letters of it failed with
    'file name too long' (a 500)."""
    hospital = _hospital_with_october(db, tmp_path)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    before = _stored(db, hospital)
    r = client.post(f"/api/v1/quality/{hospital.code}/imports", headers=h,
                    data={"kind": "prescriptions", "period": "2026-10"},
                    files={"file": ("rx." + "c" * 300, _good_csv(), "text/csv")})
    assert r.status_code == 422 and r.json()["code"] == UNSUPPORTED, r.text
    assert _stored(db, hospital) == before


def test_an_offset_past_any_finding_is_refused(client: TestClient, db: Session) -> None:
    token = make_token(db, Role.regional_admin)
    db.commit()
    big = "99999999999999999999"
    r = client.get("/api/v1/quality/sfsrmyy/findings/over_supply",
                   params={"period": "2026-10", "offset": big}, headers=auth(token))
    assert r.status_code == 422, r.text
    client.post("/staff/sign-in", data={"token": token, "next": "/"})
    r = client.get("/quality/rational", params={"hospital": "sfsrmyy", "period": "2026-10",
                                                "check": "big_prescription", "offset": big})
    assert r.status_code == 422


def test_a_review_of_a_drug_the_period_never_prescribed_is_refused(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    """A verdict on a drug is of a drug in the period's lines: one for any typed code was
    stored, and showed nowhere."""
    hospital = _hospital_with_october(db, tmp_path)
    h = auth(make_token(db, Role.pharmacist, hospital))
    db.commit()
    before = _reviews(db, hospital)
    for code in ("NO-SUCH-DRUG", "１２", "<script>"):
        r = client.post(f"/api/v1/quality/{hospital.code}/reviews", headers=h, json={
            "period": "2026-10", "verdict": "rational", "drug_code": code})
        assert r.status_code == 404 and r.json()["code"] == "quality_drug_not_found", code
    assert _reviews(db, hospital) == before
    r = client.post(f"/api/v1/quality/{hospital.code}/reviews", headers=h, json={
        "period": "2026-10", "verdict": "rational", "drug_code": "OME"})
    assert r.status_code == 201, r.text
    assert _reviews(db, hospital) == before + 1
