"""What comes in is checked before a route uses it. A request body is bounded before it is
read into memory: 1 MB for JSON and forms, more for file uploads (multipart), declared in
Content-Length or sent in chunks. An oversized body is refused with 413 ``body_too_large``
(a Chinese page on pages) and writes nothing. A NUL character in a link, a form or a JSON
body is refused with 422 ``invalid_text``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip import config
from onetrip.identity.rules import Role
from onetrip.org import calendar
from onetrip.scheduling.models import Appointment
from tests.factories import auth, make_hospital, make_token
from tests.quality import handmade
from tests.scheduling.conftest import Clinic, Clock

MB = 1_000_000


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body sent in pieces (chunked, without a Content-Length)."""
    for i in range(0, len(body), 65536):
        yield body[i:i + 65536]


def _upload(fields: dict[str, str], name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body written out byte for byte (a client would escape a NUL in a name)."""
    boundary = "onetripboundary"
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields.items())
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    return body + content + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def _booking_body(clinic: Clinic, patient_id: int, pad: int) -> bytes:
    """A booking padded with white space: valid JSON of about ``pad`` bytes more."""
    return json.dumps({"schedule_id": clinic.schedule.id, "patient_id": patient_id,
                       "channel": "window"}).encode() + b" " * pad


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_an_oversized_json_body_is_refused_and_books_nothing(
        client: TestClient, clock: Clock, db: Session, clinic: Clinic, chunked: bool) -> None:
    patient, _ = clinic.patient(db)
    token = make_token(db, Role.window, clinic.hospital)
    db.commit()
    body = _booking_body(clinic, patient.id, MB + 1000)
    r = client.post("/api/v1/appointments", content=_chunks(body) if chunked else body,
                    headers={**auth(token), "Idempotency-Key": "big",
                             "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "body_too_large"
    assert r.json()["detail"] == {"limit_bytes": MB}
    assert "请求体" in r.json()["message"]
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id)) == 0
    # The same request within the limit books: the limit is what refused it.
    small = _booking_body(clinic, patient.id, 100)
    r = client.post("/api/v1/appointments", content=small,
                    headers={**auth(token), "Idempotency-Key": "small",
                             "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_an_oversized_form_on_a_page_gets_a_chinese_page(client: TestClient) -> None:
    r = client.post("/staff/sign-in", content=b"token=" + b"x" * (MB + 10),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "请求体过大" in r.text


def test_an_oversized_fhir_body_is_an_operation_outcome(client: TestClient) -> None:
    r = client.post("/fhir/Organization/_search", content=b"name=" + b"x" * (MB + 10),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-long"


def _big_charges(path: Path, at_least: int) -> tuple[Path, int]:
    """A valid month of charges larger than ``at_least`` bytes."""
    base = handmade.month_rows(handmade.CHARGES, "2026-10")
    rows: list[tuple[object, ...]] = []
    n = 0
    while True:
        rows += [(f"{r[0]}-{n}", *r[1:]) for r in base]
        n += 1
        if n % 200 == 0:
            handmade.write_csv(path, handmade.CHARGE_HEADER, rows)
            if path.stat().st_size > at_least:
                return path, len(rows)


def test_a_file_upload_may_pass_the_json_limit(
        client: TestClient, db: Session, tmp_path: Path) -> None:
    hospital = make_hospital(db)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    src, rows = _big_charges(tmp_path / "c.csv", MB + 100_000)
    r = client.post(f"/api/v1/quality/{hospital.code}/imports", headers=h,
                    data={"kind": "charges", "period": "2026-10"},
                    files={"file": ("c.csv", src.read_bytes(), "text/csv")})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == rows


@pytest.fixture
def small_uploads(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Uploads capped at 200 kB (settings are read when the app is made)."""
    monkeypatch.setenv("ONETRIP_MAX_UPLOAD_BYTES", "200000")
    config.get_settings.cache_clear()
    yield 200_000
    monkeypatch.delenv("ONETRIP_MAX_UPLOAD_BYTES")
    config.get_settings.cache_clear()


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_an_upload_over_its_limit_is_refused_and_imports_nothing(
        small_uploads: int, client: TestClient, db: Session, tmp_path: Path,
        chunked: bool) -> None:
    hospital = make_hospital(db)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    src, _rows = _big_charges(tmp_path / "c.csv", small_uploads)
    body, kind = _upload({"kind": "charges", "period": "2026-10"}, "c.csv", src.read_bytes())
    url = f"/api/v1/quality/{hospital.code}/imports"
    r = client.post(url, content=_chunks(body) if chunked else body,
                    headers={**h, "Content-Type": kind})
    assert r.status_code == 413, r.text
    assert r.json() == {"code": "body_too_large", "message": r.json()["message"],
                        "detail": {"limit_bytes": small_uploads}}
    assert client.get(url, headers=h).json() == []


# --- NUL characters ---------------------------------------------------------------------------
# PostgreSQL cannot hold a NUL in text (psycopg refuses the value: a 500 on 21 pages), and on
# SQLite it would be stored unseen. Refused as bad input wherever it comes in, on both.


@pytest.mark.parametrize("path", ["/search?q=a%00b", "/hospitals/a%00b",
                                  "/book/hospitals/sfsrmyy/a%00b"])
def test_a_nul_in_a_link_gets_a_chinese_page(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 422, r.text[-300:]
    assert r.headers["content-type"].startswith("text/html") and "无效字符" in r.text


def test_a_nul_in_the_api_or_fhir_is_invalid_text(client: TestClient) -> None:
    r = client.get("/api/v1/search", params={"q": "a\x00b"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_text"
    r = client.get("/fhir/Organization", params={"name": "a\x00b"})
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


def test_a_nul_in_a_json_body_books_nothing(client: TestClient, clock: Clock, db: Session,
                                            clinic: Clinic) -> None:
    patient, _ = clinic.patient(db)
    token = make_token(db, Role.window, clinic.hospital)
    db.commit()
    body = b'{"schedule_id": %d, "patient_id": %d, "channel": "window", "x": "a\\u0000"}' % (
        clinic.schedule.id, patient.id)
    r = client.post("/api/v1/appointments", content=body,
                    headers={**auth(token), "Idempotency-Key": "nul",
                             "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_text", r.text
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == patient.id)) == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_a_nul_in_a_form_changes_nothing(client: TestClient, db: Session,
                                         chunked: bool) -> None:
    hospital = make_hospital(db)
    token = make_token(db, Role.hospital_admin, hospital)
    db.commit()
    client.post("/staff/sign-in", data={"token": token, "next": "/"})
    form = (f"hospital={hospital.code}&day=2026-12-08&kind=closed&name="
            + "院" * 40_000 + "%00庆").encode()  # the NUL far into the body, past a chunk
    r = client.post("/admin/calendar/overrides", content=_chunks(form) if chunked else form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "无效字符" in r.text
    assert calendar.list_overrides(db, hospital=hospital) == []
    r = client.post("/staff/sign-in", data={"username": "a\x00b", "password": "x"})
    assert r.status_code == 422 and "无效字符" in r.text


def test_a_nul_in_an_upload_form_imports_nothing(client: TestClient, db: Session) -> None:
    """The fields of a file upload, and the file's name (which an import keeps), are text
    as well: a NUL there is refused as in any other form, on SQLite too."""
    hospital = make_hospital(db)
    h = auth(make_token(db, Role.hospital_admin, hospital))
    db.commit()
    url = f"/api/v1/quality/{hospital.code}/imports"
    charges = handmade.csv_text(handmade.CHARGE_HEADER, handmade.month_rows(
        handmade.CHARGES, "2026-10")).encode()
    month = {"kind": "charges", "period": "2026-10"}
    for fields, name in [(month, "c\x00.csv"), ({**month, "mapping": "{\"a\x00\": \"b\"}"},
                                                "c.csv")]:
        body, kind = _upload(fields, name, charges)
        r = client.post(url, headers={**h, "Content-Type": kind}, content=body)
        assert r.status_code == 422 and r.json()["code"] == "invalid_text", r.text
    assert client.get(url, headers=h).json() == []


def test_a_route_that_takes_no_form_never_reads_the_one_it_was_sent(
        client: TestClient, clock: Clock, db: Session, clinic: Clinic) -> None:
    patient, _ = clinic.patient(db)
    appt = clinic.book(db, patient.id)
    token = make_token(db, Role.window, clinic.hospital)
    db.commit()
    body, kind = _upload({"note": "a\x00b"}, "c.csv", b"x" * 1000)
    r = client.post(f"/api/v1/appointments/{appt.id}/confirm", content=body,
                    headers={**auth(token), "Content-Type": kind, "Idempotency-Key": "c"})
    assert r.status_code == 200 and r.json()["status"] == "booked", r.text
