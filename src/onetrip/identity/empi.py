"""The master patient index beyond registration (ID-3): possible duplicates, merge, unmerge.

Registration already resolves a known document to its patient. Two records can still be
one person when each was registered with a different document (a passport at one hospital,
a resident ID card at another). Staff see those as possible duplicates (same name, birth
date and phone) and merge them: the duplicate's documents and family links move to the
survivor, the duplicate points at it, and ``PatientsMerged`` tells other domains (booking
moves appointments along, inside the same transaction). An unmerge moves back exactly
what the merge moved and publishes ``PatientsUnmerged``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from onetrip.db import utcnow
from onetrip.errors import PermissionDenied
from onetrip.events import Event, publish
from onetrip.identity import audit
from onetrip.identity.errors import (
    AlreadyUnmerged,
    MergeNotAllowed,
    MergeNotFound,
    PatientNotFound,
)
from onetrip.identity.models import FamilyMember, Patient, PatientDocument, PatientMerge
from onetrip.identity.principal import Principal
from onetrip.identity.rules import EMPI_ADMINS, DocumentType


@dataclass(frozen=True)
class PatientsMerged(Event):
    """``source`` now resolves to ``target``; re-point your rows and remember which."""

    merge_id: int
    source_patient_id: int
    target_patient_id: int


@dataclass(frozen=True)
class PatientsUnmerged(Event):
    """Undo of ``merge_id``: move back the rows that merge moved."""

    merge_id: int
    source_patient_id: int
    target_patient_id: int


def _require_admin(db: Session, principal: Principal, action: str,
                   patient_ids: list[int]) -> None:
    if principal.role not in EMPI_ADMINS:
        for pid in patient_ids:
            audit.record(db, principal, action=action, patient_id=pid, outcome="denied")
        raise PermissionDenied()


def list_duplicates(db: Session, principal: Principal, *, limit: int = 100
                    ) -> list[list[Patient]]:
    """Groups of active patients with the same name, birth date and phone but different
    documents (one audit row per patient listed)."""
    _require_admin(db, principal, "empi.duplicates", [])
    keys = db.execute(
        select(Patient.name, Patient.birth_date, Patient.phone_index)
        .where(Patient.status == "active")
        .group_by(Patient.name, Patient.birth_date, Patient.phone_index)
        .having(func.count(Patient.id) > 1)
        .order_by(Patient.name).limit(limit)).all()
    groups = []
    for name, born, phone in keys:
        rows = list(db.scalars(select(Patient).where(
            Patient.name == name, Patient.birth_date == born, Patient.phone_index == phone,
            Patient.status == "active").options(selectinload(Patient.documents))
            .order_by(Patient.id)))
        for p in rows:
            audit.record(db, principal, action="empi.duplicates", patient_id=p.id)
        groups.append(rows)
    return groups


def _load(db: Session, patient_id: int) -> Patient:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise PatientNotFound(detail={"patient_id": patient_id})
    return patient


def merge_patients(db: Session, principal: Principal, *, source_id: int, target_id: int,
                   reason: str = "") -> PatientMerge:
    """Merge the duplicate ``source_id`` into ``target_id`` (hospital or regional admins).

    Refuses merging a record into itself, an already merged record, and two records that
    hold different resident ID numbers (two citizens can never be one person)."""
    _require_admin(db, principal, "empi.merge", [source_id, target_id])
    source, target = _load(db, source_id), _load(db, target_id)
    if source.id == target.id or source.status != "active" or target.status != "active":
        raise MergeNotAllowed(detail={"source": source_id, "target": target_id})
    citizen = DocumentType.resident_id_card.value
    source_ids = {d.number_index for d in source.documents if d.document_type == citizen}
    target_ids = {d.number_index for d in target.documents if d.document_type == citizen}
    if source_ids and target_ids and source_ids != target_ids:
        raise MergeNotAllowed("两份档案的居民身份证号码不同，不是同一人",
                              detail={"source": source_id, "target": target_id})
    doc_ids = [d.id for d in source.documents]
    already = set(db.scalars(select(FamilyMember.account_id)
                             .where(FamilyMember.patient_id == target.id)))
    member_ids = list(db.scalars(select(FamilyMember.id).where(
        FamilyMember.patient_id == source.id, FamilyMember.account_id.not_in(already))))
    _move(db, doc_ids, member_ids, to_patient=target.id)
    source.status, source.merged_into_id = "merged", target.id
    merge = PatientMerge(source_patient_id=source.id, target_patient_id=target.id,
                         document_ids=doc_ids, member_ids=member_ids, reason=reason[:200],
                         merged_by=principal.actor[:100])
    db.add(merge)
    db.flush()
    db.expire(source, ["documents"])
    db.expire(target, ["documents"])
    for pid, other in ((target.id, source.id), (source.id, target.id)):
        audit.record(db, principal, action="empi.merge", patient_id=pid,
                     detail={"merge_id": merge.id, "other_patient_id": other})
    publish(db, PatientsMerged(merge.id, source.id, target.id))
    return merge


def unmerge_patients(db: Session, principal: Principal, merge_id: int) -> PatientMerge:
    """Undo a merge: the moved documents and family links go back; the record is active."""
    merge = db.get(PatientMerge, merge_id)
    if merge is None:
        _require_admin(db, principal, "empi.unmerge", [])
        raise MergeNotFound(detail={"merge_id": merge_id})
    _require_admin(db, principal, "empi.unmerge",
                   [merge.source_patient_id, merge.target_patient_id])
    if merge.unmerged_at is not None:
        raise AlreadyUnmerged(detail={"merge_id": merge_id})
    source = _load(db, merge.source_patient_id)
    _move(db, merge.document_ids, merge.member_ids, to_patient=source.id)
    source.status, source.merged_into_id = "active", None
    merge.unmerged_at, merge.unmerged_by = utcnow(), principal.actor[:100]
    db.flush()
    db.expire_all()
    for pid in (merge.source_patient_id, merge.target_patient_id):
        audit.record(db, principal, action="empi.unmerge", patient_id=pid,
                     detail={"merge_id": merge.id})
    publish(db, PatientsUnmerged(merge.id, merge.source_patient_id, merge.target_patient_id))
    return merge


def _move(db: Session, document_ids: list[int], member_ids: list[int], *,
          to_patient: int) -> None:
    if document_ids:
        db.execute(update(PatientDocument).where(PatientDocument.id.in_(document_ids))
                   .values(patient_id=to_patient))
    if member_ids:
        db.execute(update(FamilyMember).where(FamilyMember.id.in_(member_ids))
                   .values(patient_id=to_patient))


def merged_into(db: Session, patient_id: int) -> list[int]:
    """``patient_id`` and every record merged into it, directly or in a chain."""
    ids = [patient_id]
    frontier = [patient_id]
    while frontier:
        frontier = list(db.scalars(select(Patient.id).where(Patient.merged_into_id.in_(frontier))))
        ids.extend(frontier)
    return ids


def list_merges(db: Session, *, limit: int = 50) -> list[PatientMerge]:
    return list(db.scalars(select(PatientMerge).order_by(PatientMerge.id.desc()).limit(limit)))
