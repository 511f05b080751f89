"""Identity tables: patients and their documents (the master patient index), phone accounts
and family members, staff, sign-in sessions, SMS codes and the append-only audit trail.

Identity numbers and phones are never stored in clear: ``*_cipher`` holds AES-GCM
ciphertext and ``*_index`` the keyed blind index used for exact lookup (crypto.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onetrip.db import Base, UTCDateTime, utcnow


class ApiToken(Base):
    """A bearer token for an integration, a kiosk or a staff console (only its hash is kept)."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    role: Mapped[str] = mapped_column(String(32))
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospital.id"))
    #: A department admin's token acts for this department (and those under it) only.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Patient(Base):
    """One real person (ID-3: the master record every document and card resolves to)."""

    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint("gender in ('', 'male', 'female')", name="gender"),
        CheckConstraint("status in ('active', 'merged')", name="status"),
        CheckConstraint("verification in ('none', 'online', 'offline')", name="verification"),
        CheckConstraint("(status = 'merged') = (merged_into_id IS NOT NULL)", name="merged"),
        # The duplicate finder groups by these three.
        Index("ix_patient_name_birth_date_phone_index", "name", "birth_date", "phone_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(8), default="")
    birth_date: Mapped[date] = mapped_column(Date)
    phone_cipher: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Set when this record was merged into another (the survivor); cleared by an unmerge.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    #: ID-5: how the real name was checked (online against the public-security service,
    #: offline by a clerk holding the document).
    verification: Mapped[str] = mapped_column(String(16), default="none")
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    documents: Mapped[list[PatientDocument]] = relationship(
        back_populates="patient", order_by="PatientDocument.id")


class PatientDocument(Base):
    """An identity document or card of a patient (ID-2); one number belongs to one patient."""

    __tablename__ = "patient_document"
    __table_args__ = (UniqueConstraint("document_type", "number_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    document_type: Mapped[str] = mapped_column(String(32))
    number_cipher: Mapped[str] = mapped_column(String(300))
    #: Blind index; citizen-number documents share one namespace (rules.index_purpose).
    number_index: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="documents")


class Account(Base):
    """A phone account that signs in by SMS code and manages family members (ID-6)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_cipher: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    members: Mapped[list[FamilyMember]] = relationship(
        back_populates="account", order_by="FamilyMember.id")


class FamilyMember(Base):
    """A patient an account may act for, and how they are related (本人/子女/父母/配偶/其他)."""

    __tablename__ = "family_member"
    __table_args__ = (
        UniqueConstraint("account_id", "patient_id"),
        CheckConstraint("relation in ('self','child','parent','spouse','other')",
                        name="relation"),
        # One 本人 per account.
        Index("ix_family_member_one_self", "account_id", unique=True,
              sqlite_where=text("relation = 'self'"),
              postgresql_where=text("relation = 'self'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    relation: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="members")
    patient: Mapped[Patient] = relationship()


class PatientMerge(Base):
    """An EMPI merge of a duplicate into a survivor, with what moved so it can be undone."""

    __tablename__ = "patient_merge"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    target_patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    document_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    member_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(200), default="")
    merged_by: Mapped[str] = mapped_column(String(100))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unmerged_by: Mapped[str | None] = mapped_column(String(100))
    unmerged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Staff(Base):
    """A staff member who signs in with a password (argon2) and, for admins, TOTP.

    A department admin names its department; a doctor's account may name the practitioner
    it is (one account per practitioner), so the console opens on that doctor's sessions.
    """

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(32))
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"),
                                                        index=True, unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_cipher: Mapped[str | None] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInSession(Base):
    """A signed-in browser or app: a staff member or a phone account (only the hash kept)."""

    __tablename__ = "sign_in_session"
    __table_args__ = (
        CheckConstraint("(staff_id IS NULL) <> (account_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_ip: Mapped[str] = mapped_column(String(45), default="")


class SmsCode(Base):
    """A one-time sign-in code sent to a phone (only its hash is kept)."""

    __tablename__ = "sms_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SmsOutbox(Base):
    """Messages of the default SMS sender: the local outbox a developer or tester reads."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_cipher: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One read or write of patient data (append-only; each row chains the previous hash)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        CheckConstraint("outcome in ('allowed', 'denied')", name="outcome"),
        Index("ix_audit_event_chain_id", "chain", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Which of the parallel hash chains this row extends (see identity.audit).
    chain: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(Integer, index=True)
    account_id: Mapped[int | None] = mapped_column(Integer)
    token_id: Mapped[int | None] = mapped_column(Integer)
    hospital_id: Mapped[int | None] = mapped_column(Integer)
    patient_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(8))
    request_id: Mapped[str] = mapped_column(String(64), default="")
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
