"""ID-3: possible duplicates, merge and unmerge, carrying documents, family and history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip import events
from onetrip.errors import PermissionDenied
from onetrip.identity import audit, empi, service
from onetrip.identity.errors import AlreadyUnmerged, MergeNotAllowed
from onetrip.identity.models import AuditEvent, FamilyMember
from onetrip.identity.principal import Principal
from onetrip.identity.rules import DocumentType, Role
from tests.factories import (
    WINDOW,
    account_principal,
    make_account,
    make_patient,
    mobile,
    resident_id,
)

ADMIN = Principal(role=Role.hospital_admin, hospital_id=1, staff_id=900, label="admin")


def _pair(db: Session) -> tuple[int, int]:
    """The same person registered twice: a passport at one desk, an ID card at another."""
    phone = mobile()
    a = make_patient(db, name="陈静", phone=phone, birth_date=date(1970, 6, 1),
                     document_number=resident_id(date(1970, 6, 1)))
    b = make_patient(db, name="陈静", phone=phone, birth_date=date(1970, 6, 1),
                     document_type=DocumentType.passport, document_number="E55501234")
    return a.id, b.id


@pytest.fixture
def moved_rows() -> Iterator[list[tuple[str, int, int, int]]]:
    """A stand-in for the booking domain: it re-points its rows inside the transaction."""
    seen: list[tuple[str, int, int, int]] = []

    def on_merge(db: Session, ev: empi.PatientsMerged) -> None:
        seen.append(("merged", ev.merge_id, ev.source_patient_id, ev.target_patient_id))

    def on_unmerge(db: Session, ev: empi.PatientsUnmerged) -> None:
        seen.append(("unmerged", ev.merge_id, ev.source_patient_id, ev.target_patient_id))

    events.on_commit(empi.PatientsMerged)(on_merge)
    events.on_commit(empi.PatientsUnmerged)(on_unmerge)
    yield seen
    events._in_tx[empi.PatientsMerged].remove(on_merge)
    events._in_tx[empi.PatientsUnmerged].remove(on_unmerge)


def test_id3_duplicates_list_finds_same_name_birth_date_and_phone(db: Session) -> None:
    a, b = _pair(db)
    groups = empi.list_duplicates(db, ADMIN)
    assert [a, b] in [[p.id for p in g] for g in groups]
    with pytest.raises(PermissionDenied):
        empi.list_duplicates(db, WINDOW)


def test_id3_merge_then_unmerge_carries_documents_family_events_and_audit(
        db: Session, moved_rows: list[tuple[str, int, int, int]]) -> None:
    a, b = _pair(db)
    history = service.access_patient(db, WINDOW, b, action="patient.read")
    assert history.id == b

    merge = empi.merge_patients(db, ADMIN, source_id=b, target_id=a, reason="同一人")
    db.commit()  # the on-commit subscribers (booking) run inside this transaction
    assert moved_rows == [("merged", merge.id, b, a)]
    master = service.get_patient(db, a)
    dup = service.get_patient(db, b)
    assert master is not None and dup is not None
    assert dup.status == "merged" and dup.merged_into_id == a
    assert {d.document_type for d in master.documents} == {"resident_id_card", "passport"}
    # Registering the passport again now resolves to the survivor.
    assert service.find_by_document(db, DocumentType.passport, "E55501234") == master
    assert service.access_patient(db, WINDOW, b).id == a
    # History follows: the audit of the survivor includes the merged record's rows.
    ids = empi.merged_into(db, a)
    assert set(ids) == {a, b}
    actions = {(r.patient_id, r.action) for r in audit.search(db, patient_ids=ids)}
    assert (b, "patient.read") in actions and (a, "empi.merge") in actions

    empi.unmerge_patients(db, ADMIN, merge.id)
    db.commit()
    assert moved_rows[-1] == ("unmerged", merge.id, b, a)
    db.expire_all()
    dup = service.get_patient(db, b)
    assert dup is not None and dup.status == "active" and dup.merged_into_id is None
    assert [d.document_type for d in dup.documents] == ["passport"]
    assert service.find_by_document(db, DocumentType.passport, "E55501234") == dup
    with pytest.raises(AlreadyUnmerged):
        empi.unmerge_patients(db, ADMIN, merge.id)
    rows = db.scalars(select(AuditEvent).where(AuditEvent.action.in_(
        ["empi.merge", "empi.unmerge"]))).all()
    assert sorted((r.action, r.patient_id) for r in rows) == sorted(
        [("empi.merge", a), ("empi.merge", b), ("empi.unmerge", a), ("empi.unmerge", b)])


def test_id3_merge_moves_family_links_and_unmerge_moves_them_back(db: Session) -> None:
    a, b = _pair(db)
    acct = make_account(db)
    db.add(FamilyMember(account_id=acct.account_id, patient_id=b, relation="parent"))
    db.flush()
    merge = empi.merge_patients(db, ADMIN, source_id=b, target_id=a)
    assert account_principal(db, acct).patient_ids == {a}
    assert service.access_patient(db, account_principal(db, acct), b).id == a
    empi.unmerge_patients(db, ADMIN, merge.id)
    assert account_principal(db, acct).patient_ids == {b}


def test_id3_two_different_resident_ids_are_never_merged(db: Session) -> None:
    x = make_patient(db, name="周强")
    y = make_patient(db, name="周强")
    with pytest.raises(MergeNotAllowed):
        empi.merge_patients(db, ADMIN, source_id=y.id, target_id=x.id)
    with pytest.raises(MergeNotAllowed):
        empi.merge_patients(db, ADMIN, source_id=x.id, target_id=x.id)


def test_id3_only_admins_merge_and_the_refusal_is_audited(db: Session) -> None:
    a, b = _pair(db)
    with pytest.raises(PermissionDenied):
        empi.merge_patients(db, WINDOW, source_id=b, target_id=a)
    denied = db.scalars(select(AuditEvent).where(AuditEvent.action == "empi.merge")).all()
    assert {(r.patient_id, r.outcome) for r in denied} == {(a, "denied"), (b, "denied")}
