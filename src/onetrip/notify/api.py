"""/api/v1 routes of the notify domain."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from onetrip.deps import CurrentPrincipal, DbSession, Now
from onetrip.errors import PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.notify import service, slip
from onetrip.notify.schemas import NotificationRead, PresentedDocument
from onetrip.scheduling import booking
from onetrip.scheduling.models import Appointment

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


def _pdf(db: DbSession, appt: Appointment, size: slip.SlipSize, now: Now) -> Response:
    body = slip.render_pdf(slip.slip_for(db, appt, now=now), size)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="slip-{appt.id}.pdf"',
        "Cache-Control": "no-store"})


def _staff_or_patient(db: DbSession, principal: Principal, appointment_id: int) -> Appointment:
    appt = booking.access_appointment(db, principal, appointment_id)
    if principal.role not in (Role.patient, Role.proxy, Role.regional_admin):
        identity_service.access_patient(db, principal, appt.patient_id, action="slip.print")
    return appt


@router.get("/appointments/{appointment_id}/slip.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def print_slip(appointment_id: int, db: DbSession, principal: CurrentPrincipal, now: Now,
               size: slip.SlipSize = Query(slip.SlipSize.receipt)) -> Response:
    """RM-1: the paper slip of an appointment (patients their own and family's; staff of the
    hospital). Kiosks post the presented card instead (the number stays out of the URL)."""
    if principal.role is Role.kiosk:
        raise PermissionDenied("自助机打印提醒单须先读取就诊人证件")
    return _pdf(db, _staff_or_patient(db, principal, appointment_id), size, now)


@router.post("/appointments/{appointment_id}/slip.pdf", response_class=Response,
             responses={200: {"content": {"application/pdf": {}}}})
def print_slip_at_kiosk(appointment_id: int, body: PresentedDocument, db: DbSession,
                        principal: CurrentPrincipal, now: Now,
                        size: slip.SlipSize = Query(slip.SlipSize.receipt)) -> Response:
    """RM-1: a kiosk prints the slip once the patient's card is read (ID-4, ID-6)."""
    if principal.role is not Role.kiosk:
        return print_slip(appointment_id, db, principal, now, size)
    appt = booking.access_appointment(db, principal, appointment_id)
    patient = identity_service.access_patient_by_document(db, principal, body.document_type,
                                                          body.document_number)
    if patient.id != appt.patient_id:
        raise PermissionDenied("证件与预约人不符", detail={"reason": "not_owner"})
    return _pdf(db, appt, size, now)
