"""RM-1: the paper slip PDF, read back: Chinese text, embedded font, QR code to the link."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

import pypdfium2 as pdfium
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import get_now
from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Account, AuditEvent, Patient
from onetrip.identity.rules import Relationship, Role
from onetrip.notify.slip import appointment_link, mask_name
from onetrip.org.models import Location
from onetrip.scheduling import booking
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel
from tests.factories import auth, make_account, make_hospital, make_patient, make_token, resident_id
from tests.scheduling.conftest import OPEN, Clinic

MM = 72 / 25.4


@dataclass
class Booked:
    appt: Appointment
    patient: Patient
    document: str
    account_headers: dict[str, str]


@pytest.fixture
def booked(db: Session, clinic: Clinic, client: TestClient) -> Booked:
    client.app.dependency_overrides[get_now] = lambda: OPEN  # type: ignore[attr-defined]
    building = Location(hospital_id=clinic.hospital.id, kind="building", code="OPD",
                        name="门诊楼")
    db.add(building)
    db.flush()
    floor = Location(hospital_id=clinic.hospital.id, parent_id=building.id, kind="floor",
                     code="OPD3", name="门诊楼3楼")
    db.add(floor)
    db.flush()
    room = Location(hospital_id=clinic.hospital.id, parent_id=floor.id, kind="room",
                    code="OPD3-301", name="门诊楼3楼301诊室")
    db.add(room)
    db.flush()
    clinic.schedule.location_id = room.id
    account = make_account(db)
    make_patient(db, principal=account, name="欧阳晓华")
    document = resident_id(date(2015, 6, 1))
    child = make_patient(db, principal=account, name="欧阳明", document_number=document,
                         birth_date=date(2015, 6, 1), relationship=Relationship.child)
    appt = booking.book(db, principal=clinic.patient_principal(child.id), patient_id=child.id,
                        channel=Channel.app, schedule_id=clinic.schedule.id, now=OPEN)
    db.flush()
    secret = identity_auth.start_session(db, account=db.get_one(Account, account.account_id))
    return Booked(appt, child, document, auth(secret))


def _text(pdf: bytes) -> str:
    """The text as PDFium (Chrome's PDF engine) reads it, without line breaks and spaces."""
    doc = pdfium.PdfDocument(pdf)
    try:
        return re.sub(r"\s+", "", "".join(p.get_textpage().get_text_range() for p in doc))
    finally:
        doc.close()


def _qr_codes(pdf: bytes) -> list[str]:
    """The QR codes found on the page as printed (rendered at 300 dpi), decoded."""
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[0].render(scale=300 / 72).to_pil()
    finally:
        doc.close()
    return [c.text for c in zxingcpp.read_barcodes(image)]


def test_rm1_the_slip_holds_the_visit_in_chinese_with_the_font_embedded_and_a_qr_code(
        client: TestClient, booked: Booked, clinic: Clinic) -> None:
    r = client.get(f"/api/v1/appointments/{booked.appt.id}/slip.pdf",
                   headers=booked.account_headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    (page,) = reader.pages
    assert float(page.mediabox.width) == pytest.approx(80 * MM, abs=0.5)  # receipt width
    text = _text(r.content)
    # Printed on the Saturday: the Friday 16:00 deadline for cancelling online has passed,
    # so the slip sends the patient to the window rather than naming that moment (BK-6).
    for expected in ("就诊提醒单", "心血管内科", "门诊楼3楼301诊室", "楼宇：门诊楼",
                     "12月14日", "星期一", "已过网上取消截止时间", "签到", "就诊准备", "欧*明"):
        assert expected in text, expected
    assert "欧阳明" not in text  # the name is masked on paper
    (font,) = [f.get_object() for f in page["/Resources"]["/Font"].values()]
    assert "NotoSansCJKSC" in font["/BaseFont"]
    descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
    assert "/FontFile3" in descriptor or "/FontFile2" in descriptor  # embedded, not referenced
    assert _qr_codes(r.content) == [appointment_link(booked.appt.id)]
    assert appointment_link(booked.appt.id).endswith(f"/me/appointments/{booked.appt.id}")


def test_rm1_the_slip_comes_in_a6_too_and_refuses_an_unknown_size(
        client: TestClient, booked: Booked) -> None:
    url = f"/api/v1/appointments/{booked.appt.id}/slip.pdf"
    r = client.get(url, params={"size": "a6"}, headers=booked.account_headers)
    assert r.status_code == 200
    reader = PdfReader(io.BytesIO(r.content))
    assert len(reader.pages) == 1  # the whole slip on one sheet
    page = reader.pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == \
        (pytest.approx(105 * MM, abs=0.5), pytest.approx(148 * MM, abs=0.5))
    assert _qr_codes(r.content) == [appointment_link(booked.appt.id)]
    assert client.get(url, params={"size": "a4"},
                      headers=booked.account_headers).status_code == 422


def test_rm1_window_staff_print_and_the_print_is_audited_other_hospitals_cannot(
        client: TestClient, booked: Booked, clinic: Clinic, db: Session) -> None:
    url = f"/api/v1/appointments/{booked.appt.id}/slip.pdf"
    r = client.get(url, headers=auth(make_token(db, Role.window, clinic.hospital)))
    assert r.status_code == 200
    assert db.scalar(select(AuditEvent.id).where(AuditEvent.action == "slip.print",
                                                 AuditEvent.patient_id == booked.patient.id))
    elsewhere = make_hospital(db, level="secondary")
    assert client.get(url, headers=auth(make_token(db, Role.window, elsewhere))) \
        .status_code == 404
    assert client.get(url, headers=auth(make_token(db, Role.regulator))).status_code == 403
    stranger = make_account(db)
    make_patient(db, principal=stranger)
    secret = identity_auth.start_session(db, account=db.get_one(Account, stranger.account_id))
    assert client.get(url, headers=auth(secret)).status_code == 403
    assert client.get(url).status_code == 401


def test_rm1_a_kiosk_prints_only_for_the_card_presented(
        client: TestClient, booked: Booked, clinic: Clinic, db: Session) -> None:
    url = f"/api/v1/appointments/{booked.appt.id}/slip.pdf"
    kiosk = auth(make_token(db, Role.kiosk, clinic.hospital))
    assert client.get(url, headers=kiosk).status_code == 403
    other = resident_id(date(1970, 1, 1))
    make_patient(db, document_number=other, birth_date=date(1970, 1, 1))
    wrong = client.post(url, json={"document_number": other}, headers=kiosk)
    assert wrong.status_code == 403 and wrong.json()["message"] == "证件与预约人不符"
    assert other not in wrong.text
    r = client.post(url, json={"document_number": booked.document}, headers=kiosk)
    assert r.status_code == 200 and "欧*明" in _text(r.content)


def test_rm1_a_cancelled_appointment_has_no_slip(
        client: TestClient, booked: Booked, clinic: Clinic, db: Session) -> None:
    booking.cancel(db, principal=clinic.window, appointment_id=booked.appt.id,
                   now=OPEN + timedelta(minutes=1))
    r = client.get(f"/api/v1/appointments/{booked.appt.id}/slip.pdf",
                   headers=booked.account_headers)
    assert r.status_code == 409 and r.json()["code"] == "slip_unavailable"


def test_rm1_names_are_masked_on_paper() -> None:
    assert [mask_name(n) for n in ("李", "李明", "王小明", "欧阳晓华")] == \
        ["李", "李*", "王*明", "欧**华"]


def test_rm1_a_missing_font_is_a_clear_error_not_a_slip_without_chinese(
        client: TestClient, booked: Booked, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "slip_font", "/nonexistent/NotoSansCJK.ttc")
    r = client.get(f"/api/v1/appointments/{booked.appt.id}/slip.pdf",
                   headers=booked.account_headers)
    assert r.status_code == 503 and r.json()["code"] == "slip_font_missing"
    assert "中文字体" in r.json()["message"]
