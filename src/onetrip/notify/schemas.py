"""Pydantic shapes of the notify API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from onetrip.identity.rules import DocumentType


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    appointment_id: int | None
    template: str
    channel: str
    status: str
    attempts: int
    send_at: datetime
    sent_at: datetime | None
    last_error: str


class PresentedDocument(BaseModel):
    """The card a kiosk has read (ID-4); never sent in a URL."""

    document_type: DocumentType = DocumentType.resident_id_card
    document_number: str = Field(min_length=4, max_length=40)
