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
                                       Role.exam_centre, Role.department_admin,
                                       Role.hospital_admin, Role.regional_admin,
                                       Role.regulator}
    for s in staff:
        totp = pyotp.TOTP(s.totp_secret).now() if s.totp_secret else ""
        out = auth.sign_in_staff(db, username=s.username, password=s.password, totp=totp)
        assert out.secret is not None, s.username
        assert auth.authenticate_token(db, out.secret).role is s.role


def test_demo_department_admin_keeps_a_department_and_the_doctor_is_linked(
        db: Session) -> None:
    from datetime import timedelta

    from onetrip.config import get_settings
    from onetrip.db import utcnow
    from onetrip.identity.demo import DEMO_DEPARTMENT, DEMO_PRACTITIONER_CODE
    from onetrip.identity.models import Staff
    from onetrip.org.service import access_department, access_hospital, access_practitioner
    from onetrip.scheduling.models import Schedule

    h = access_hospital(db, "sfsrmyy")
    dadmin = db.scalar(select(Staff).where(Staff.username == "demo-dadmin"))
    doctor = db.scalar(select(Staff).where(Staff.username == "demo-doctor"))
    assert dadmin is not None and doctor is not None
    dept = access_department(db, h, DEMO_DEPARTMENT[0])
    assert dadmin.department_id == dept.id and dept.name == DEMO_DEPARTMENT[1]
    prac = access_practitioner(db, h, DEMO_PRACTITIONER_CODE)
    assert doctor.practitioner_id == prac.id and dept in prac.departments
    # the linked doctor has a morning session on every clinic day of the demo fortnight
    today = utcnow().astimezone(get_settings().tz).date()
    week = (Schedule.hospital_id == h.id, Schedule.day >= today,
            Schedule.day < today + timedelta(days=7))
    clinic_days = set(db.scalars(select(Schedule.day).where(*week)))
    his = set(db.scalars(select(Schedule.day).where(
        *week, Schedule.practitioner_id == prac.id, Schedule.session == "am")))
    assert clinic_days and his == clinic_days
