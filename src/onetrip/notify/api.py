"""/api/v1 routes of the notify domain."""

from __future__ import annotations

from fastapi import APIRouter

from onetrip.deps import CurrentPrincipal, DbSession
from onetrip.errors import PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.notify import service
from onetrip.notify.schemas import NotificationRead

router = APIRouter(prefix="/api/v1", tags=["notify"])


@router.get("/notifications", response_model=list[NotificationRead])
def list_notifications(patient_id: int, db: DbSession,
                       principal: CurrentPrincipal) -> list[NotificationRead]:
    """A patient's messages, newest first, for staff (access rules and audit of identity)."""
    if principal.role in (Role.patient, Role.proxy):
        raise PermissionDenied()
    patient = identity_service.access_patient(db, principal, patient_id,
                                              action="notification.read")
    return [NotificationRead.model_validate(n)
            for n in service.list_for_patient(db, patient_id=patient.id)]
