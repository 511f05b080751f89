"""The identity part of the demo region: 10,000 real-name patients, families, staff."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.demo import DEFAULT_SEED
from onetrip.identity import auth, empi, service
from onetrip.identity.crypto import keyring
from onetrip.identity.demo import DEMO_PATIENT_PHONE, DEMO_PROXY_PHONE, demo_staff
from onetrip.identity.models import FamilyMember, Patient, PatientDocument
from onetrip.identity.principal import Principal
from onetrip.identity.rules import CITIZEN_NUMBER_TYPES, DocumentType, Role, is_valid_resident_id


def test_demo_has_10000_patients_with_valid_distinct_resident_ids(db: Session) -> None:
    assert (db.scalar(select(func.count(Patient.id))) or 0) >= 10_000
    kr = keyring()
    citizen = [kr.decrypt(c, purpose="document") for c in db.scalars(
        select(PatientDocument.number_cipher).where(PatientDocument.document_type.in_(
            [DocumentType.resident_id_card.value, DocumentType.household_register.value])))]
    assert len(citizen) >= 10_000 and len(set(citizen)) == len(citizen)
    assert all(is_valid_resident_id(n) for n in citizen)


def test_demo_has_every_document_type_and_possible_duplicates(db: Session) -> None:
    kinds = Counter(db.scalars(select(PatientDocument.document_type)))
    for kind in DocumentType:
        assert kinds[kind.value] >= (3 if kind not in CITIZEN_NUMBER_TYPES else 10), kind
    groups = empi.list_duplicates(db, Principal(role=Role.regional_admin))
    assert len(groups) >= 3


def test_demo_families_have_patients_with_children_and_proxies(db: Session) -> None:
    me = service.find_by_phone(db, DEMO_PATIENT_PHONE)
    assert me, "the demo patient registered with its own phone"
    rows = db.execute(select(FamilyMember.account_id, FamilyMember.relation)).all()
    by_account: dict[int, set[str]] = {}
    for account_id, relation in rows:
        by_account.setdefault(account_id, set()).add(relation)
    assert len(by_account) >= 1000
    assert sum("self" not in r for r in by_account.values()) >= 50  # proxies
    assert sum("child" in r for r in by_account.values()) >= 300
    assert DEMO_PROXY_PHONE != DEMO_PATIENT_PHONE


def test_demo_staff_sign_in_with_the_printed_credentials(db: Session) -> None:
    import pyotp

    staff = demo_staff(DEFAULT_SEED)
    assert {s.role for s in staff} >= {Role.window, Role.doctor, Role.pharmacist,
                                       Role.exam_centre, Role.hospital_admin,
                                       Role.regional_admin, Role.regulator}
    for s in staff:
        totp = pyotp.TOTP(s.totp_secret).now() if s.totp_secret else ""
        out = auth.sign_in_staff(db, username=s.username, password=s.password, totp=totp)
        assert out.secret is not None, s.username
        assert auth.authenticate_token(db, out.secret).role is s.role
