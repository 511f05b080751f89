"""API shapes of the identity domain. Numbers and phones leave only masked, except in
``PatientIdentity`` (for the roles that check documents at a desk)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from onetrip.identity import service
from onetrip.identity.models import AuditEvent, FamilyMember, Patient, PatientDocument
from onetrip.identity.rules import (
    DOCUMENT_LABELS,
    RELATIONSHIP_LABELS,
    DocumentType,
    Relationship,
)


class PatientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    document_type: DocumentType
    document_number: str = Field(min_length=1, max_length=80)
    phone: str = Field(min_length=1, max_length=24)
    birth_date: date | None = None
    gender: Literal["", "male", "female"] = ""
    relationship: Relationship | None = None


class DocumentCreate(BaseModel):
    document_type: DocumentType
    document_number: str = Field(min_length=1, max_length=80)


class PatientSearch(BaseModel):
    document_type: DocumentType | None = None
    document_number: str | None = Field(default=None, max_length=80)
    phone: str | None = Field(default=None, max_length=24)
    name: str | None = Field(default=None, max_length=50)


class DocumentRead(BaseModel):
    id: int
    document_type: DocumentType
    label: str
    number: str

    @classmethod
    def of(cls, doc: PatientDocument) -> DocumentRead:
        kind = DocumentType(doc.document_type)
        return cls(id=doc.id, document_type=kind, label=DOCUMENT_LABELS[kind],
                   number=service.masked_id_number(doc))


class PatientRead(BaseModel):
    id: int
    name: str
    gender: str
    birth_date: date
    phone: str
    documents: list[DocumentRead]
    status: str
    merged_into_id: int | None
    verification: str

    @classmethod
    def of(cls, p: Patient) -> PatientRead:
        return cls(id=p.id, name=p.name, gender=p.gender, birth_date=p.birth_date,
                   phone=service.masked_phone(p), documents=[DocumentRead.of(d)
                                                             for d in p.documents],
                   status=p.status, merged_into_id=p.merged_into_id,
                   verification=p.verification)


class PatientIdentity(BaseModel):
    """Full numbers, for a clerk comparing the record with the document in hand."""

    id: int
    name: str
    phone: str
    documents: list[DocumentRead]

    @classmethod
    def of(cls, p: Patient) -> PatientIdentity:
        docs = [DocumentRead(id=d.id, document_type=DocumentType(d.document_type),
                             label=DOCUMENT_LABELS[DocumentType(d.document_type)],
                             number=service.document_number(d)) for d in p.documents]
        return cls(id=p.id, name=p.name, phone=service.patient_phone(p), documents=docs)


class FamilyMemberRead(BaseModel):
    relationship: Relationship
    label: str
    patient: PatientRead

    @classmethod
    def of(cls, m: FamilyMember) -> FamilyMemberRead:
        rel = Relationship(m.relation)
        return cls(relationship=rel, label=RELATIONSHIP_LABELS[rel],
                   patient=PatientRead.of(m.patient))


class PhoneUpdate(BaseModel):
    phone: str = Field(min_length=1, max_length=24)


class VerificationCreate(BaseModel):
    method: Literal["offline", "online"]


class MergeCreate(BaseModel):
    source_patient_id: int
    target_patient_id: int
    reason: str = Field(default="", max_length=200)


class MergeRead(BaseModel):
    id: int
    source_patient_id: int
    target_patient_id: int
    document_ids: list[int]
    member_ids: list[int]
    merged_by: str
    merged_at: datetime
    unmerged_at: datetime | None


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    patient_id: int | None
    action: str
    outcome: str
    request_id: str
    client_ip: str

    @classmethod
    def of(cls, row: AuditEvent) -> AuditRead:
        return cls(id=row.id, at=row.at, actor=row.actor, actor_role=row.actor_role,
                   patient_id=row.patient_id, action=row.action, outcome=row.outcome,
                   request_id=row.request_id, client_ip=row.client_ip)


class SmsCodeCreate(BaseModel):
    phone: str = Field(min_length=1, max_length=24)


class SmsSignInCreate(BaseModel):
    phone: str = Field(min_length=1, max_length=24)
    code: str = Field(min_length=4, max_length=8)


class StaffSignInCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    totp: str = Field(default="", max_length=10)


class SessionRead(BaseModel):
    token: str
    role: str
    patient_ids: list[int] = []
