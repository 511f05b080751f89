"""Registration, the master patient index on registration, family members and access."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity import service
from onetrip.identity.errors import (
    BirthDateTooEarly,
    DocumentBelongsToOther,
    DocumentNameMismatch,
    FamilyFull,
    FutureBirthDate,
    GuardianRequired,
    InvalidDocument,
    InvalidDocumentCheckDigit,
    InvalidName,
    InvalidPhone,
    PatientNotFound,
    PhoneMismatch,
    SelfAlreadyRegistered,
    UnknownRegionCode,
)
from onetrip.identity.models import AuditEvent, Patient, PatientDocument
from onetrip.identity.principal import Principal
from onetrip.identity.rules import DocumentType, Relationship, Role
from tests.factories import (
    WINDOW,
    account_principal,
    make_account,
    make_patient,
    mobile,
    resident_id,
)


def _counts(db: Session) -> tuple[int, int, int]:
    return (db.scalar(select(func.count(Patient.id))) or 0,
            db.scalar(select(func.count(PatientDocument.id))) or 0,
            db.scalar(select(func.count(AuditEvent.id))) or 0)


def test_id1_register_with_resident_id_derives_birth_date_and_gender_and_encrypts(
        db: Session) -> None:
    number = resident_id(date(1975, 3, 9), seq="124")
    reg = service.register_patient(db, WINDOW, name="王小明", document_type=DocumentType.
                                   resident_id_card, document_number=number,
                                   phone="13812345678")
    p = reg.patient
    assert reg.created and p.birth_date == date(1975, 3, 9) and p.gender == "female"
    doc = p.documents[0]
    assert number not in doc.number_cipher and "13812345678" not in p.phone_cipher
    assert service.masked_id_number(p) == number[:6] + "********" + number[-4:]
    assert service.masked_phone(p) == "138****5678"


def test_id1_insured_patient_registers_with_social_security_card_and_phone(db: Session) -> None:
    p = make_patient(db, document_type=DocumentType.social_security_card,
                     birth_date=date(1962, 7, 1))
    assert p.documents[0].document_type == "social_security_card"
    assert p.birth_date == date(1962, 7, 1)


def test_id3_known_document_resolves_to_the_master_patient(db: Session) -> None:
    number = resident_id(date(1990, 1, 2))
    first = make_patient(db, name="李华", document_number=number)
    again = service.register_patient(db, WINDOW, name="李华", document_type=DocumentType.
                                     resident_id_card, document_number=number.lower(),
                                     phone=mobile())
    assert not again.created and again.patient.id == first.id
    # The social-security card carries the same citizen number: same person, card added.
    ssc = service.register_patient(db, WINDOW, name="李华", document_type=DocumentType.
                                   social_security_card, document_number=number,
                                   phone=mobile())
    assert ssc.patient.id == first.id
    assert {d.document_type for d in first.documents} == {"resident_id_card",
                                                           "social_security_card"}
    assert service.find_by_document(db, DocumentType.household_register, number) == first


def test_id3_known_document_under_another_name_is_refused_and_changes_nothing(
        db: Session) -> None:
    number = resident_id(date(1990, 1, 3))
    make_patient(db, name="李华", document_number=number)
    before = _counts(db)
    with pytest.raises(DocumentNameMismatch):
        service.register_patient(db, WINDOW, name="李小华", document_type=DocumentType.
                                 resident_id_card, document_number=number, phone=mobile())
    assert _counts(db) == before


@pytest.mark.parametrize(("number", "error"), [
    ("110105194912310021", InvalidDocumentCheckDigit),
    ("99010519491231002X", UnknownRegionCode),
    ("1101051949", InvalidDocument),
])
def test_id2_bad_resident_ids_are_refused_with_specific_errors_and_change_nothing(
        db: Session, number: str, error: type[Exception]) -> None:
    before = _counts(db)
    with pytest.raises(error) as info:
        service.register_patient(db, WINDOW, name="张三", document_type=DocumentType.
                                 resident_id_card, document_number=number, phone=mobile())
    assert number not in str(info.value)
    assert _counts(db) == before


def test_id2_passport_needs_a_birth_date_not_in_the_future(db: Session) -> None:
    with pytest.raises(FutureBirthDate):
        service.register_patient(db, WINDOW, name="John Smith", document_type=DocumentType.
                                 passport, document_number="E12345678", phone=mobile(),
                                 birth_date=date.today() + timedelta(days=2))
    with pytest.raises(InvalidDocument):
        service.register_patient(db, WINDOW, name="John Smith", document_type=DocumentType.
                                 passport, document_number="AB-12", phone=mobile(),
                                 birth_date=date(1980, 1, 1))
    # Nor before 1890, the same floor a resident ID number's date has: 0001-01-01 made a
    # patient of 2,025 years.
    for born in (date(1, 1, 1), date(1889, 12, 31)):
        with pytest.raises(BirthDateTooEarly):
            service.register_patient(db, WINDOW, name="John Smith", document_type=DocumentType.
                                     passport, document_number="E12345679", phone=mobile(),
                                     birth_date=born)
    p = service.register_patient(db, WINDOW, name="John Smith", document_type=DocumentType.
                                 passport, document_number="E12345679", phone=mobile(),
                                 birth_date=date(1890, 1, 1)).patient
    assert p.birth_date == date(1890, 1, 1)


def test_id1_phone_must_be_a_mobile(db: Session) -> None:
    with pytest.raises(InvalidPhone):
        make_patient(db, phone="0575-88000120")


def test_id3_adding_a_document_of_another_patient_is_refused(db: Session) -> None:
    a = make_patient(db)
    b = make_patient(db, document_type=DocumentType.passport, document_number="E87654321")
    with pytest.raises(DocumentBelongsToOther):
        service.add_document(db, WINDOW, a.id, document_type=DocumentType.passport,
                             document_number="e87654321")
    assert [d.document_type for d in a.documents] == ["resident_id_card"]
    assert b.documents[0].patient_id == b.id
    card = "AB" * 32
    doc = service.add_document(db, WINDOW, a.id, document_type=DocumentType.health_card,
                               document_number=card)
    assert doc.patient_id == a.id
    assert service.find_by_document(db, DocumentType.health_card, card.lower()) == a


def test_id6_account_adds_self_then_family_with_guardian_and_limit(db: Session) -> None:
    acct = make_account(db)
    child_birth = date.today().replace(year=date.today().year - 6)
    with pytest.raises(GuardianRequired):
        make_patient(db, principal=acct, relationship=Relationship.child,
                     birth_date=child_birth)
    me = make_patient(db, principal=acct, birth_date=date(1985, 4, 4))
    acct = account_principal(db, acct)
    assert acct.role is Role.patient and acct.patient_ids == {me.id}
    with pytest.raises(SelfAlreadyRegistered):
        make_patient(db, principal=acct, relationship=Relationship.self_)
    child = make_patient(db, principal=acct, relationship=Relationship.child,
                         birth_date=child_birth, document_type=DocumentType.household_register)
    for rel in (Relationship.parent, Relationship.parent, Relationship.spouse):
        make_patient(db, principal=acct, relationship=rel, birth_date=date(1950, 1, 1))
    with pytest.raises(FamilyFull) as info:
        make_patient(db, principal=acct, relationship=Relationship.other)
    assert "5" in info.value.text
    acct = account_principal(db, acct)
    assert child.id in acct.patient_ids and len(acct.patient_ids) == 5


def test_id6_patient_reaches_only_its_own_family(db: Session) -> None:
    acct = make_account(db)
    me = make_patient(db, principal=acct)
    stranger = make_patient(db)
    acct = account_principal(db, acct)
    assert service.access_patient(db, acct, me.id) == me
    with pytest.raises(PermissionDenied):
        service.access_patient(db, acct, stranger.id)
    with pytest.raises(PermissionDenied):  # no hint whether an id exists
        service.access_patient(db, acct, 10**9)


def test_staff_get_404_for_unknown_patients_and_the_regulator_never_reads(db: Session) -> None:
    p = make_patient(db)
    with pytest.raises(PatientNotFound):
        service.access_patient(db, WINDOW, 10**9)
    with pytest.raises(PermissionDenied):
        service.access_patient(db, Principal(role=Role.regulator), p.id)
    assert service.get_patient(db, p.id) == p and service.get_patient(db, 10**9) is None


def test_id6_linking_a_known_person_to_an_account_needs_their_phone(db: Session) -> None:
    number = resident_id(date(1950, 5, 5))
    grandma = make_patient(db, name="何秀英", document_number=number, phone="13600005555")
    acct = make_account(db)
    make_patient(db, principal=acct, birth_date=date(1980, 1, 1))
    acct = account_principal(db, acct)
    with pytest.raises(PhoneMismatch):
        service.register_patient(db, acct, name="何秀英", document_type=DocumentType.
                                 resident_id_card, document_number=number, phone=mobile(),
                                 relationship=Relationship.parent)
    reg = service.register_patient(db, acct, name="何秀英", document_type=DocumentType.
                                   resident_id_card, document_number=number,
                                   phone="13600005555", relationship=Relationship.parent)
    assert not reg.created and reg.patient.id == grandma.id
    assert grandma.id in account_principal(db, acct).patient_ids


def test_id3_a_registration_racing_another_resolves_to_the_winner(
        db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    number = resident_id(date(1999, 9, 9))
    winner = make_patient(db, name="林一", document_number=number)
    real = service.find_by_document
    calls: list[int] = []

    def first_lookup_misses(*args: Any, **kw: Any) -> Patient | None:
        calls.append(1)  # as if the winner had not committed when we looked
        return None if len(calls) == 1 else real(*args, **kw)

    monkeypatch.setattr(service, "find_by_document", first_lookup_misses)
    reg = service.register_patient(db, WINDOW, name="林一", document_type=DocumentType.
                                   resident_id_card, document_number=number, phone=mobile())
    assert not reg.created and reg.patient.id == winner.id and len(calls) == 2
    assert len(winner.documents) == 1


@pytest.mark.parametrize(("name", "ok"), [
    ("王芳", True), ("买买提·艾力", True), ("John O'Neil", True), ("Anne-Marie Li", True),
    ("王", False), ("王芳1", False), ("<script>", False), ("  ", False),
])
def test_id1_names_are_checked_as_on_the_document(name: str, ok: bool) -> None:
    if ok:
        assert service.check_name(name) == name
    else:
        with pytest.raises(InvalidName):
            service.check_name(name)


def test_id1_the_window_records_a_new_phone_and_lookups_follow(db: Session) -> None:
    p = make_patient(db, phone="13600001234")
    service.change_phone(db, WINDOW, p.id, "13600004321")
    assert service.masked_phone(p) == "136****4321"
    assert service.find_by_phone(db, "13600004321") == [p]
    assert service.find_by_phone(db, "13600001234") == []
    with pytest.raises(InvalidPhone):
        service.change_phone(db, WINDOW, p.id, "123")
    with pytest.raises(PermissionDenied):
        service.change_phone(db, Principal(role=Role.doctor, hospital_id=1), p.id,
                             "13600005678")
