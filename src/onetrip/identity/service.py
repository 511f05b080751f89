"""Identity use cases: real-name registration, the master patient index, family members and
access to a patient's record.

Other domains call ``get_patient``, ``access_patient`` and the masking helpers; everything
that reads or writes a patient's data leaves one audit row (audit.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from onetrip.config import get_settings
from onetrip.db import among_bound, read_built, utcnow
from onetrip.errors import OnetripError, PermissionDenied
from onetrip.identity import audit
from onetrip.identity.auth import (
    HospitalScopeRequired,
    InvalidToken,
    account_patient_ids,
    account_role,
    authenticate_many,
    authenticate_token,
    create_token,
)
from onetrip.identity.crypto import keyring
from onetrip.identity.errors import (
    DOCUMENT_ERRORS,
    AlreadyFamilyMember,
    BirthDateMismatch,
    BirthDateRequired,
    BirthDateTooEarly,
    DocumentBelongsToOther,
    DocumentNameMismatch,
    FamilyFull,
    FutureBirthDate,
    GuardianRequired,
    InvalidName,
    InvalidPhone,
    PatientNotFound,
    PhoneMismatch,
    SelfAlreadyRegistered,
)
from onetrip.identity.models import Account, FamilyMember, Patient, PatientDocument
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    ACCOUNT_ROLES,
    CARE_STAFF,
    CITIZEN_NUMBER_TYPES,
    OLDEST_BIRTH,
    REGISTRARS,
    REVEALERS,
    DocumentType,
    Relationship,
    Role,
    document_facts,
    document_problem,
    index_purpose,
    is_guardian,
    mask_document,
    mask_phone,
    may_act_for_patient,
    needs_guardian,
    normalise_document,
    normalise_mobile,
)

__all__ = [
    "HospitalScopeRequired", "InvalidToken", "PatientNotFound", "Principal",
    "access_patient", "access_patient_by_document", "account_patient_ids", "account_role",
    "authenticate_many", "authenticate_token", "create_token",
    "get_patient", "masked_id_number", "masked_phone", "register_patient",
]

# Chinese characters or Latin letters; the middle dot of minority names (买买提·艾力), and
# the spaces, hyphens and apostrophes of foreign names.
_LETTER = r"[\u3400-\u9fffA-Za-z]"
_NAME = re.compile(rf"^{_LETTER}[\u3400-\u9fffA-Za-z·•.'\- ]{{0,48}}{_LETTER}$")


def today() -> date:
    return utcnow().astimezone(get_settings().tz).date()


# --- values in and out ------------------------------------------------------------------


def check_name(name: str) -> str:
    """A real name as on the document: 2-50 Chinese characters or letters (ID-1)."""
    cleaned = " ".join(name.split())
    if not _NAME.match(cleaned):
        raise InvalidName(detail={"field": "name"})
    return cleaned


def check_phone(phone: str) -> str:
    """ID-1: a reachable mobile number, as E.164; raises InvalidPhone."""
    e164 = normalise_mobile(phone)
    if e164 is None:
        raise InvalidPhone(detail={"field": "phone"})
    return e164


def check_document(doc_type: DocumentType, number: str) -> str:
    """ID-2: the normalised number, or the specific InvalidDocument error of its problem."""
    problem = document_problem(doc_type, number, today())
    if problem is not None:
        raise DOCUMENT_ERRORS[problem](detail={"field": "document_number",
                                               "document_type": doc_type.value,
                                               "problem": problem.value})
    return normalise_document(doc_type, number)


def phone_index(e164: str) -> str:
    return keyring().blind_index(e164, purpose="phone")


def document_index(doc_type: DocumentType, number: str) -> str:
    return keyring().blind_index(number, purpose=index_purpose(doc_type))


def document_number(document: PatientDocument) -> str:
    """The full number; callers show it only to roles that need it (REVEALERS)."""
    return keyring().decrypt(document.number_cipher, purpose="document")


def patient_phone(patient: Patient | Account) -> str:
    return keyring().decrypt(patient.phone_cipher, purpose="phone")


def masked_phone(patient: Patient | Account) -> str:
    """``138****5678``: the phone as every page and response shows it."""
    return mask_phone(patient_phone(patient))


_DOC_ORDER = list(DocumentType)


def primary_document(patient: Patient) -> PatientDocument | None:
    """The document shown first: resident ID card before the others (ID-2 order)."""
    if not patient.documents:
        return None
    return min(patient.documents,
               key=lambda d: (_DOC_ORDER.index(DocumentType(d.document_type)), d.id))


def masked_id_number(patient: Patient | PatientDocument) -> str:
    """``330102********1234``: the primary document number, masked (first 6 + last 4)."""
    doc = primary_document(patient) if isinstance(patient, Patient) else patient
    return mask_document(document_number(doc)) if doc is not None else ""


# --- lookup and access ------------------------------------------------------------------


def get_patient(db: Session, patient_id: int) -> Patient | None:
    """The patient row with this id (a merged record is returned as it is), or None."""
    return db.get(Patient, patient_id)


def master_of(db: Session, patient: Patient) -> Patient:
    """ID-3: follow merges to the surviving master record."""
    seen = {patient.id}
    while patient.merged_into_id is not None:
        nxt = db.get(Patient, patient.merged_into_id)
        if nxt is None or nxt.id in seen:
            break
        seen.add(nxt.id)
        patient = nxt
    return patient


def _access(principal: Principal, patient_id: int, master_id: int | None, action: str,
            ) -> tuple[int | OnetripError, audit.Entry | None]:
    """The access rule (ID-6 in ``rules.may_act_for_patient``): the master id or the error,
    and the audit row it leaves (a denied one only where the patient exists)."""
    if master_id is None and principal.role in CARE_STAFF:
        return PatientNotFound(detail={"patient_id": patient_id}), None
    if master_id is None or not may_act_for_patient(principal.role, master_id,
                                                    principal.patient_ids):
        denied = (audit.Entry(principal, action, master_id, "denied")
                  if master_id is not None else None)
        return PermissionDenied(detail={"patient_id": patient_id}), denied
    return master_id, audit.Entry(principal, action, master_id)


def access_patient(db: Session, principal: Principal, patient_id: int, *,
                   action: str = "patient.read") -> Patient:
    """The master record of ``patient_id`` if ``principal`` may act for it (one audit row);
    raises PatientNotFound or PermissionDenied (ID-6 rules in ``rules.may_act_for_patient``)."""
    patient = db.get(Patient, patient_id)
    master = master_of(db, patient) if patient is not None else None
    decided, entry = _access(principal, patient_id, master.id if master else None, action)
    if entry is not None:
        audit.record(db, entry.principal, action=action, patient_id=entry.patient_id,
                     outcome=entry.outcome)
    if isinstance(decided, OnetripError):
        raise decided
    assert master is not None
    return master


def access_patients(db: Session, requests: Sequence[tuple[Principal, int]], *, action: str,
                    record_allowed: bool = True) -> list[int | OnetripError]:
    """``access_patient`` for many requests at once (a batch of bookings): each one's master
    patient id, or the error ``access_patient`` would raise. Denied attempts leave their
    audit rows; allowed ones too, unless ``record_allowed`` is False because the caller
    records what it then did for each."""
    masters = master_ids(db, {pid for _principal, pid in requests})
    out: list[int | OnetripError] = []
    entries = []
    for principal, pid in requests:
        decided, entry = _access(principal, pid, masters.get(pid), action)
        out.append(decided)
        if entry is not None and (record_allowed or entry.outcome == "denied"):
            entries.append(entry)
    audit.record_many(db, entries)
    return out


def master_ids(db: Session, patient_ids: set[int]) -> dict[int, int]:
    """ID-3: the surviving master record's id of every patient id that exists."""
    if not patient_ids:
        return {}
    rows = read_built(db, _masters_statement, {"ids": list(patient_ids)}).all()
    return {pid: pid if merged is None else master_of(db, db.get_one(Patient, pid)).id
            for pid, merged in rows}


@lru_cache(maxsize=4)
def _masters_statement(dialect: str) -> Any:
    t = cast(Table, Patient.__table__).c
    return select(t.id, t.merged_into_id).where(among_bound(dialect, t.id, "ids"))


def find_by_document(db: Session, doc_type: DocumentType, number: str) -> Patient | None:
    """ID-3: the master patient holding this document (citizen numbers match across the
    resident ID card, social-security card and household register), or None."""
    normalised = check_document(doc_type, number)
    types = ([t.value for t in CITIZEN_NUMBER_TYPES] if doc_type in CITIZEN_NUMBER_TYPES
             else [doc_type.value])
    doc = db.scalar(select(PatientDocument)
                    .where(PatientDocument.number_index == document_index(doc_type, normalised),
                           PatientDocument.document_type.in_(types))
                    .order_by(PatientDocument.id).limit(1))
    return master_of(db, doc.patient) if doc is not None else None


def access_patient_by_document(db: Session, principal: Principal,
                               document_type: DocumentType, number: str) -> Patient:
    """ID-4: the patient whose card or document is presented (a kiosk swipe, a desk scan):
    kiosks and care staff only; one audit row; raises PatientNotFound or PermissionDenied."""
    if principal.role not in CARE_STAFF | {Role.kiosk}:
        audit.record(db, principal, action="patient.card", patient_id=None, outcome="denied")
        raise PermissionDenied()
    patient = find_by_document(db, document_type, number)
    if patient is None:
        raise PatientNotFound(detail={"field": "document_number"})
    audit.record(db, principal, action="patient.card", patient_id=patient.id,
                 detail={"document_type": document_type.value})
    return patient


def find_by_phone(db: Session, phone: str) -> list[Patient]:
    """Active patients registered with this phone (exact, through the blind index)."""
    return list(db.scalars(select(Patient).where(Patient.phone_index == phone_index(
        check_phone(phone)), Patient.status == "active").order_by(Patient.id).limit(50)))


def find_by_name(db: Session, name: str, *, limit: int = 50) -> list[Patient]:
    """Active patients whose name starts with ``name``."""
    cleaned = " ".join(name.split())
    if not cleaned:
        return []
    return list(db.scalars(select(Patient).where(Patient.name.startswith(cleaned, autoescape=True),
                                                 Patient.status == "active")
                           .order_by(Patient.name, Patient.id).limit(limit)))


def search_patients(db: Session, principal: Principal, *, document_type: DocumentType | None
                    = None, document_number: str | None = None, phone: str | None = None,
                    name: str | None = None) -> list[Patient]:
    """Staff search (one audit row per patient found): by document or phone, exactly, through
    the blind index, or by name."""
    if principal.role not in CARE_STAFF:
        audit.record(db, principal, action="patient.search", patient_id=None, outcome="denied")
        raise PermissionDenied()
    if document_type is not None and document_number:
        found = find_by_document(db, document_type, document_number)
        patients = [found] if found is not None else []
    elif phone:
        patients = find_by_phone(db, phone)
    else:
        patients = find_by_name(db, name or "")
    for p in patients:
        audit.record(db, principal, action="patient.search", patient_id=p.id)
    return patients


# --- registration (ID-1, ID-2, ID-3) ------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    patient: Patient
    created: bool


def register_patient(db: Session, principal: Principal, *, name: str,
                     document_type: DocumentType, document_number: str, phone: str,
                     birth_date: date | None = None, gender: str = "",
                     relationship: Relationship | None = None) -> Registration:
    """Register a real-name patient, or resolve to the master patient already holding the
    document (ID-3). A phone account adds the patient to its family (ID-6).

    Raises the specific InvalidDocument error, InvalidName, InvalidPhone,
    DocumentNameMismatch (known document, other name), PhoneMismatch (an account linking a
    known person without their phone), GuardianRequired, FamilyFull; nothing is written
    when it raises.
    """
    if principal.role not in REGISTRARS | ACCOUNT_ROLES:
        raise PermissionDenied()
    name = check_name(name)
    e164 = check_phone(phone)
    number = check_document(document_type, document_number)
    doc_birth, doc_gender = document_facts(document_type, number)
    if doc_birth is not None and birth_date is not None and birth_date != doc_birth:
        raise BirthDateMismatch(detail={"field": "birth_date"})
    born = doc_birth or birth_date
    if born is None:
        raise BirthDateRequired(detail={"field": "birth_date"})
    if born > today():
        raise FutureBirthDate(detail={"field": "birth_date"})
    if born < OLDEST_BIRTH:  # the floor a resident ID number's date has
        raise BirthDateTooEarly(detail={"field": "birth_date"})
    if gender not in ("", "male", "female"):
        gender = ""
    account = _account_of(db, principal)
    if account is not None:
        relationship = relationship or Relationship.self_
        _check_family_rules(db, account, relationship, born)
    existing = find_by_document(db, document_type, number)
    if existing is None:
        try:
            with db.begin_nested():
                patient = _create(db, name=name, gender=doc_gender or gender, born=born,
                                  e164=e164, document_type=document_type, number=number)
        except IntegrityError:
            # Another registration of the same document committed first: resolve to it.
            existing = find_by_document(db, document_type, number)
            if existing is None:
                raise
        else:
            if account is not None and relationship is not None:
                _link(db, account, patient, relationship)
            audit.record(db, principal, action="patient.register", patient_id=patient.id,
                         detail={"resolved": "created", "document_type": document_type.value})
            return Registration(patient, created=True)
    if not _same_name(existing.name, name):
        raise DocumentNameMismatch(detail={"field": "name"})
    if existing.birth_date != born:
        raise BirthDateMismatch(detail={"field": "birth_date"})
    if account is not None and existing.phone_index != phone_index(e164):
        # ID-6: linking a known person to an account also needs the phone they registered
        # with, so a name and an ID number alone do not open someone's record.
        raise PhoneMismatch(detail={"field": "phone"})
    _attach_document(db, existing, document_type, number)
    if account is not None and relationship is not None:
        _link(db, account, existing, relationship)
    audit.record(db, principal, action="patient.register", patient_id=existing.id,
                 detail={"resolved": "existing", "document_type": document_type.value})
    return Registration(existing, created=False)


def _create(db: Session, *, name: str, gender: str, born: date, e164: str,
            document_type: DocumentType, number: str) -> Patient:
    kr = keyring()
    patient = Patient(name=name, gender=gender, birth_date=born,
                      phone_cipher=kr.encrypt(e164, purpose="phone"),
                      phone_index=phone_index(e164))
    db.add(patient)
    db.flush()
    _attach_document(db, patient, document_type, number)
    return patient


def add_document(db: Session, principal: Principal, patient_id: int, *,
                 document_type: DocumentType, document_number: str) -> PatientDocument:
    """ID-3/ID-4: add another document or card (e.g. the health card) to a patient."""
    patient = access_patient(db, principal, patient_id, action="patient.add_document")
    number = check_document(document_type, document_number)
    holder = find_by_document(db, document_type, number)
    if holder is not None and holder.id != patient.id:
        raise DocumentBelongsToOther(detail={"field": "document_number"})
    born, _gender = document_facts(document_type, number)
    if born is not None and born != patient.birth_date:
        raise BirthDateMismatch(detail={"field": "document_number"})
    return _attach_document(db, patient, document_type, number)


def change_phone(db: Session, principal: Principal, patient_id: int, phone: str) -> Patient:
    """A window clerk or hospital admin, with the document in hand, records a new phone."""
    if principal.role not in REVEALERS:
        audit.record(db, principal, action="patient.change_phone", patient_id=patient_id,
                     outcome="denied")
        raise PermissionDenied()
    e164 = check_phone(phone)
    patient = access_patient(db, principal, patient_id, action="patient.change_phone")
    patient.phone_cipher = keyring().encrypt(e164, purpose="phone")
    patient.phone_index = phone_index(e164)
    db.flush()
    return patient


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _attach_document(db: Session, patient: Patient, doc_type: DocumentType,
                     number: str) -> PatientDocument:
    for doc in patient.documents:
        if doc.document_type == doc_type.value and doc.number_index == document_index(
                doc_type, number):
            return doc
    doc = PatientDocument(patient_id=patient.id, document_type=doc_type.value,
                          number_cipher=keyring().encrypt(number, purpose="document"),
                          number_index=document_index(doc_type, number))
    db.add(doc)
    db.flush()
    db.refresh(patient, ["documents"])
    return doc


# --- accounts and family members (ID-6) --------------------------------------------------


def _account_of(db: Session, principal: Principal) -> Account | None:
    if principal.role not in ACCOUNT_ROLES or principal.account_id is None:
        return None
    return db.get(Account, principal.account_id)


def family_of(db: Session, account_id: int) -> list[FamilyMember]:
    """The account's family members with their patients, 本人 first."""
    rows = db.scalars(select(FamilyMember).where(FamilyMember.account_id == account_id)
                      .options(selectinload(FamilyMember.patient)
                               .selectinload(Patient.documents))
                      .order_by(FamilyMember.id))
    return sorted(rows, key=lambda m: (m.relation != "self", m.id))


def _check_family_rules(db: Session, account: Account, relationship: Relationship,
                        born: date) -> None:
    members = family_of(db, account.id)
    limit = get_settings().max_family_members
    if len(members) >= limit:
        raise FamilyFull(FamilyFull.message.format(limit=limit), detail={"limit": limit})
    if relationship is Relationship.self_ and any(m.relation == "self" for m in members):
        raise SelfAlreadyRegistered(detail={"field": "relationship"})
    if needs_guardian(born, today()):
        guardian = any(is_guardian(Relationship(m.relation), m.patient.birth_date, today())
                       for m in members)
        if not guardian:
            raise GuardianRequired(detail={"field": "relationship"})


def _link(db: Session, account: Account, patient: Patient,
          relationship: Relationship) -> FamilyMember:
    exists = db.scalar(select(FamilyMember).where(FamilyMember.account_id == account.id,
                                                  FamilyMember.patient_id == patient.id))
    if exists is not None:
        raise AlreadyFamilyMember(detail={"patient_id": patient.id})
    member = FamilyMember(account_id=account.id, patient_id=patient.id,
                          relation=relationship.value)
    db.add(member)
    db.flush()
    return member
