"""ID-5: online and offline real-name verification of a registered patient.

Offline: a window clerk holds the physical document and confirms it matches the record.
Online: a verifier (the public-security citizen-identity service or a provincial
real-name platform, plugged in with ``register_verifier``) confirms that name and number
belong together. Without a verifier configured, online verification is refused rather
than pretended.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from onetrip.db import utcnow
from onetrip.errors import OnetripError, PermissionDenied
from onetrip.identity import audit
from onetrip.identity.errors import InvalidDocument
from onetrip.identity.models import Patient
from onetrip.identity.principal import Principal
from onetrip.identity.rules import REVEALERS, DocumentType
from onetrip.identity.service import access_patient, document_number, primary_document

#: (name, document type, full number) -> whether the authority confirms they match.
Verifier = Callable[[str, DocumentType, str], bool]
_verifiers: list[Verifier] = []


class VerifierUnavailable(OnetripError):
    code = "verifier_unavailable"
    http_status = 503
    message = "联网实名核验服务未配置，请到窗口出示证件核验"


class VerificationFailed(InvalidDocument):
    code = "verification_failed"
    message = "姓名与证件号码核验不一致"


def register_verifier(verifier: Verifier) -> None:
    """Use ``verifier`` for online verification (the last one registered wins)."""
    _verifiers.append(verifier)


def clear_verifiers() -> None:
    _verifiers.clear()


def verify_offline(db: Session, principal: Principal, patient_id: int) -> Patient:
    """A clerk saw the document (window or hospital admin only)."""
    if principal.role not in REVEALERS:
        audit.record(db, principal, action="patient.verify", patient_id=patient_id,
                     outcome="denied")
        raise PermissionDenied()
    patient = access_patient(db, principal, patient_id, action="patient.verify")
    patient.verification, patient.verified_at = "offline", utcnow()
    db.flush()
    return patient


def verify_online(db: Session, principal: Principal, patient_id: int) -> Patient:
    """Ask the configured verifier; raises VerifierUnavailable or VerificationFailed."""
    patient = access_patient(db, principal, patient_id, action="patient.verify")
    if not _verifiers:
        raise VerifierUnavailable()
    doc = primary_document(patient)
    if doc is None:
        raise VerificationFailed()
    if not _verifiers[-1](patient.name, DocumentType(doc.document_type), document_number(doc)):
        raise VerificationFailed(detail={"field": "document_number"})
    patient.verification, patient.verified_at = "online", utcnow()
    db.flush()
    return patient
