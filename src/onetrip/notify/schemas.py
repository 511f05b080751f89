"""Pydantic shapes of the notify API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


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
