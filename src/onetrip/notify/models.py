"""The outbox: one row per message to one patient, written in the transaction that caused it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """A queued, sent, failed or cancelled message (RM-1).

    ``dedupe_key`` is unique: an event handled twice never queues the same message twice.
    ``variables`` hold what the template shows, never a full phone or identity number; the
    phone is decrypted only at the moment of sending.
    """

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'failed', 'cancelled')", name="status"),
        Index("ix_notification_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), index=True)
    #: The hospital the message is about: the staff outbox of a hospital shows its own.
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospital.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(40))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str] = mapped_column(String(300), default="")
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the patient (or a family member's account) opened it in the inbox.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Staff resends of a failed message (the same row and out_id: never a second message).
    resends: Mapped[int] = mapped_column(Integer, default=0)


class WechatBinding(Base):
    """A patient's openid at the hospital's WeChat official account (公众号), recorded when
    they follow it and bind their card; template messages go to this openid."""

    __tablename__ = "wechat_binding"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), unique=True)
    openid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
