"""/api/v1 routes of the identity domain: patients, family, EMPI, audit and sign-in.

Identity numbers and phones travel only in request bodies (never in URLs, PIPL), and
leave masked except from ``/patients/{id}/identity``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from onetrip.db import MAX_ID
from onetrip.deps import TOKEN_COOKIE, CurrentPrincipal, DbSession, require_role
from onetrip.errors import OnetripError, PermissionDenied
from onetrip.identity import audit, auth, empi, service, sms, verify
from onetrip.identity.principal import Principal
from onetrip.identity.rules import ACCOUNT_ROLES, EMPI_ADMINS, REVEALERS
from onetrip.identity.schemas import (
    AuditRead,
    DocumentCreate,
    DocumentRead,
    FamilyMemberRead,
    MergeCreate,
    MergeRead,
    PatientCreate,
    PatientIdentity,
    PatientRead,
    PatientSearch,
    PhoneUpdate,
    SessionRead,
    SmsCodeCreate,
    SmsSignInCreate,
    StaffSignInCreate,
    VerificationCreate,
)

router = APIRouter(prefix="/api/v1", tags=["identity"])
EmpiAdmin = Annotated[Principal, Depends(require_role(*EMPI_ADMINS))]


@router.post("/patients", response_model=PatientRead, status_code=201)
def register_patient(body: PatientCreate, db: DbSession, principal: CurrentPrincipal,
                     response: Response) -> PatientRead:
    """Real-name registration (ID-1): 201 new patient, 200 the known master patient (ID-3)."""
    result = service.register_patient(db, principal, **body.model_dump())
    if not result.created:
        response.status_code = 200
    return PatientRead.of(result.patient)


@router.get("/patients/{patient_id}", response_model=PatientRead)
def read_patient(patient_id: int, db: DbSession, principal: CurrentPrincipal) -> PatientRead:
    return PatientRead.of(service.access_patient(db, principal, patient_id))


@router.get("/patients/{patient_id}/identity", response_model=PatientIdentity)
def read_patient_identity(patient_id: int, db: DbSession,
                          principal: CurrentPrincipal) -> PatientIdentity:
    """Full document numbers and phone, for window clerks checking a document."""
    if principal.role not in REVEALERS:
        audit.record(db, principal, action="patient.reveal", patient_id=patient_id,
                     outcome="denied")
        raise PermissionDenied()
    return PatientIdentity.of(service.access_patient(db, principal, patient_id,
                                                     action="patient.reveal"))


@router.post("/patients/search", response_model=list[PatientRead])
def search_patients(body: PatientSearch, db: DbSession,
                    principal: CurrentPrincipal) -> list[PatientRead]:
    """Staff search by document number or phone (exact, blind index) or by name."""
    found = service.search_patients(db, principal, **body.model_dump())
    return [PatientRead.of(p) for p in found]


@router.post("/patients/lookup", response_model=PatientRead)
def lookup_by_card(body: DocumentCreate, db: DbSession,
                   principal: CurrentPrincipal) -> PatientRead:
    """ID-4: resolve a presented card or document (kiosk swipe, desk scan) to the patient."""
    return PatientRead.of(service.access_patient_by_document(
        db, principal, body.document_type, body.document_number))


@router.post("/patients/{patient_id}/documents", response_model=DocumentRead, status_code=201)
def add_document(patient_id: int, body: DocumentCreate, db: DbSession,
                 principal: CurrentPrincipal) -> DocumentRead:
    """Add a card or document (e.g. the resident health card, ID-4) to a patient."""
    if principal.role not in ACCOUNT_ROLES and principal.role not in REVEALERS:
        audit.record(db, principal, action="patient.add_document", patient_id=patient_id,
                     outcome="denied")
        raise PermissionDenied()
    return DocumentRead.of(service.add_document(db, principal, patient_id, **body.model_dump()))


@router.put("/patients/{patient_id}/phone", response_model=PatientRead)
def change_phone(patient_id: int, body: PhoneUpdate, db: DbSession,
                 principal: CurrentPrincipal) -> PatientRead:
    """A clerk records a patient's new phone after checking the document."""
    return PatientRead.of(service.change_phone(db, principal, patient_id, body.phone))


@router.post("/patients/{patient_id}/verification", response_model=PatientRead)
def verify_patient(patient_id: int, body: VerificationCreate, db: DbSession,
                   principal: CurrentPrincipal) -> PatientRead:
    """ID-5: offline (a clerk saw the document) or online (the configured verifier)."""
    if body.method == "offline":
        return PatientRead.of(verify.verify_offline(db, principal, patient_id))
    return PatientRead.of(verify.verify_online(db, principal, patient_id))


@router.get("/me/family", response_model=list[FamilyMemberRead])
def my_family(db: DbSession, principal: CurrentPrincipal) -> list[FamilyMemberRead]:
    """ID-6: the patients the signed-in phone account manages."""
    if principal.role not in ACCOUNT_ROLES or principal.account_id is None:
        raise PermissionDenied("仅患者本人或家属账户可查看")
    members = service.family_of(db, principal.account_id)
    for m in members:
        audit.record(db, principal, action="family.read", patient_id=m.patient_id)
    return [FamilyMemberRead.of(m) for m in members]


@router.get("/empi/duplicates", response_model=list[list[PatientRead]])
def list_duplicates(db: DbSession, principal: EmpiAdmin) -> list[list[PatientRead]]:
    return [[PatientRead.of(p) for p in group]
            for group in empi.list_duplicates(db, principal)]


@router.post("/empi/merges", response_model=MergeRead, status_code=201)
def merge_patients(body: MergeCreate, db: DbSession, principal: CurrentPrincipal) -> MergeRead:
    merge = empi.merge_patients(db, principal, source_id=body.source_patient_id,
                                target_id=body.target_patient_id, reason=body.reason)
    return MergeRead.model_validate(merge, from_attributes=True)


@router.post("/empi/merges/{merge_id}/unmerge", response_model=MergeRead)
def unmerge_patients(merge_id: int, db: DbSession, principal: CurrentPrincipal) -> MergeRead:
    merge = empi.unmerge_patients(db, principal, merge_id)
    return MergeRead.model_validate(merge, from_attributes=True)


@router.get("/audit", response_model=list[AuditRead])
def search_audit(db: DbSession, principal: EmpiAdmin,
                 patient_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
                 staff_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
                 ) -> list[AuditRead]:
    """Audit rows about a patient (and the records merged into it) or by a staff member."""
    ids = empi.merged_into(db, patient_id) if patient_id is not None else None
    rows = audit.search(db, patient_ids=ids, staff_id=staff_id)
    audit.record(db, principal, action="audit.search", patient_id=patient_id,
                 detail={"staff_id": staff_id} if staff_id else None)
    return [AuditRead.of(r) for r in rows]


# --- sign-in ------------------------------------------------------------------------------


def _error(exc: OnetripError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _with_cookie(body: SessionRead, request: Request) -> JSONResponse:
    response = JSONResponse(body.model_dump())
    response.set_cookie(TOKEN_COOKIE, body.token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/auth/sms-codes", status_code=202)
def request_sms_code(body: SmsCodeCreate, db: DbSession) -> dict[str, str]:
    """Send a sign-in code (1 a minute, 10 a day per phone; valid 5 minutes)."""
    sms.request_code(db, body.phone)
    return {"status": "sent"}


@router.post("/auth/sms-sign-in", response_model=SessionRead)
def sms_sign_in(body: SmsSignInCreate, db: DbSession, request: Request) -> Response:
    outcome = sms.sign_in(db, body.phone, body.code, client_ip=_client_ip(request))
    if outcome.error is not None or outcome.secret is None or outcome.account is None:
        return _error(outcome.error or auth.InvalidToken())
    ids = sorted(service.account_patient_ids(db, outcome.account.id))
    role = service.account_role(db, outcome.account.id)
    return _with_cookie(SessionRead(token=outcome.secret, role=role.value, patient_ids=ids),
                        request)


@router.post("/auth/staff-sign-in", response_model=SessionRead)
def staff_sign_in(body: StaffSignInCreate, db: DbSession, request: Request) -> Response:
    """Password plus TOTP for admins; 5 failures lock the account for 30 minutes."""
    outcome = auth.sign_in_staff(db, username=body.username, password=body.password,
                                 totp=body.totp, client_ip=_client_ip(request))
    if outcome.error is not None or outcome.secret is None:
        return _error(outcome.error or auth.InvalidToken())
    principal = auth.authenticate_token(db, outcome.secret)
    return _with_cookie(SessionRead(token=outcome.secret, role=principal.role.value), request)


@router.post("/auth/sign-out", status_code=204)
def sign_out(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else \
        request.cookies.get(TOKEN_COOKIE, "")
    if secret.startswith(auth.SESSION_PREFIX):
        auth.end_session(db, secret)
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE)
    return response

