"""PIPL: identity numbers and phones never appear in logs, URLs, errors or masked responses;
they are encrypted at rest; keys rotate."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from onetrip import config
from onetrip.identity import crypto, keys, service
from onetrip.identity.models import PatientDocument
from onetrip.identity.rules import DocumentType, Role
from onetrip.org import service as org_service
from tests.factories import auth, last_sms_code, make_patient, make_token, resident_id

# Whole tokens only: a hex digest (an index or hash) may hold a run of digits by chance.
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?1[3-9]\d{9}(?![0-9A-Za-z])")


@pytest.fixture
def sql_logging() -> Iterator[None]:
    """Log every SQL statement with its parameters (set before the test's connection opens,
    which reads the level once)."""
    logger = logging.getLogger("sqlalchemy.engine")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_pipl_log_scan_finds_no_identity_number_and_no_phone(
        sql_logging: None, client: TestClient, db: Session,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    window = auth(make_token(db, Role.window, org_service.access_hospital(db, "sfsrmyy")))
    db.commit()
    urls: list[str] = []
    bodies: list[str] = []
    people = [("隐私" + "甲乙丙丁戊"[i], resident_id(date(1970 + i, 1, 2)), f"1370000{i:04d}")
              for i in range(5)]
    for name, number, phone in people:
        for payload in (
            {"name": name, "document_type": "resident_id_card", "document_number": number,
             "phone": phone},
            {"name": name + "某", "document_type": "resident_id_card",
             "document_number": number, "phone": phone},  # name mismatch: 422
            {"name": name, "document_type": "resident_id_card",
             "document_number": number[:-1] + ("0" if number[-1] != "0" else "1"),
             "phone": phone},  # wrong check digit: 422
        ):
            r = client.post("/api/v1/patients", json=payload, headers=window)
            urls.append(str(r.request.url))
            bodies.append(r.text)
        pid = client.post("/api/v1/patients/search", headers=window,
                          json={"document_type": "resident_id_card",
                                "document_number": number}).json()[0]["id"]
        for r in (client.get(f"/api/v1/patients/{pid}", headers=window),
                  client.post("/api/v1/patients/search", json={"phone": phone},
                              headers=window),
                  client.post("/api/v1/auth/sms-codes", json={"phone": phone})):
            urls.append(str(r.request.url))
            bodies.append(r.text)
        r = client.post("/api/v1/auth/sms-sign-in",
                        json={"phone": phone, "code": last_sms_code(db, phone)})
        bodies.append(r.text)
        bodies.append(client.get("/api/v1/me/family").text)
        client.post("/api/v1/auth/sign-out")
    logged = caplog.text
    assert "INSERT INTO patient" in logged  # the scan really saw the SQL and its parameters
    everything = "\n".join([logged, *urls, *bodies])
    found = [everything[max(0, m.start() - 60):m.end() + 20]
             for pattern in (RESIDENT_ID, MOBILE) for m in pattern.finditer(everything)]
    assert found == []
    for _name, number, phone in people:
        assert number not in everything and phone not in everything


def test_pipl_numbers_and_phones_are_encrypted_at_rest(db: Session) -> None:
    number = resident_id(date(1991, 9, 9))
    p = make_patient(db, document_number=number, phone="13600001111")
    raw = db.execute(text("SELECT phone_cipher, phone_index FROM patient WHERE id = :i"),
                     {"i": p.id}).one()
    doc = db.execute(text("SELECT number_cipher FROM patient_document WHERE patient_id = :i"),
                     {"i": p.id}).scalar_one()
    assert "13600001111" not in "".join(raw) and number not in doc
    assert raw.phone_cipher.startswith("v1:") and len(raw.phone_index) == 64


def test_pipl_only_desk_roles_see_the_full_number(client: TestClient, db: Session) -> None:
    number = resident_id(date(1992, 3, 1))
    p = make_patient(db, document_number=number, phone="13600002222")
    hospital = org_service.access_hospital(db, "sfsrmyy")
    window = auth(make_token(db, Role.window, hospital))
    doctor = auth(make_token(db, Role.doctor, hospital))
    db.commit()
    full = client.get(f"/api/v1/patients/{p.id}/identity", headers=window).json()
    assert full["documents"][0]["number"] == number and full["phone"] == "+8613600002222"
    assert client.get(f"/api/v1/patients/{p.id}/identity", headers=doctor).status_code == 403
    assert number not in client.get(f"/api/v1/patients/{p.id}", headers=doctor).text


def test_key_rotation_reencrypts_and_reindexes_and_lookups_still_work(
        db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    number = resident_id(date(1983, 3, 3))
    p = make_patient(db, document_number=number, phone="13600003333")
    old_cipher = db.scalar(select(PatientDocument.number_cipher)
                           .where(PatientDocument.patient_id == p.id))
    assert old_cipher is not None
    old_key = crypto.keyring().keys[crypto.key_id_of(old_cipher)]
    old_spec = f"{crypto.key_id_of(old_cipher)}:{base64.b64encode(old_key).decode()}"
    new_key = crypto.new_key()
    monkeypatch.setenv("ONETRIP_DATA_KEYS", f"k2:{new_key},{old_spec}")
    monkeypatch.setenv("ONETRIP_INDEX_KEY", crypto.new_key())
    config.get_settings.cache_clear()
    try:
        # Before the rekey the old key still decrypts; the new index key misses.
        assert service.masked_id_number(p).endswith(number[-4:])
        assert service.find_by_document(db, DocumentType.resident_id_card, number) is None
        assert keys.values_under_old_keys(db) > 0
        counts = keys.rekey(db)
        assert counts["patient"] >= 1 and counts["patient_document"] >= 1
        assert keys.values_under_old_keys(db) == 0
        found = service.find_by_document(db, DocumentType.resident_id_card, number)
        assert found is not None and found.id == p.id
        assert service.find_by_phone(db, "13600003333")[0].id == p.id
        db.refresh(p)
        assert p.phone_cipher.startswith("v1:k2:")
        # With the old key removed, everything still opens; a wrong key opens nothing.
        monkeypatch.setenv("ONETRIP_DATA_KEYS", f"k2:{new_key}")
        config.get_settings.cache_clear()
        assert service.masked_phone(p) == "136****3333"
        monkeypatch.setenv("ONETRIP_DATA_KEYS", f"k2:{crypto.new_key()}")
        config.get_settings.cache_clear()
        with pytest.raises(crypto.UndecryptableValue):
            service.masked_phone(p)
    finally:
        monkeypatch.undo()
        config.get_settings.cache_clear()
