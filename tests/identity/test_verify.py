"""ID-5: online and offline real-name verification; ID-4: a presented card finds the patient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity import service, verify
from onetrip.identity.principal import Principal
from onetrip.identity.rules import DocumentType, Role
from tests.factories import WINDOW, make_patient


@pytest.fixture
def verifier() -> Iterator[list[tuple[str, DocumentType, str]]]:
    """A stand-in for the public-security real-name service: knows one name per number."""
    calls: list[tuple[str, DocumentType, str]] = []

    def check(name: str, doc_type: DocumentType, number: str) -> bool:
        calls.append((name, doc_type, number))
        return name != "冒名"

    verify.register_verifier(check)
    yield calls
    verify.clear_verifiers()


def test_id5_offline_verification_by_the_window_clerk(db: Session) -> None:
    p = make_patient(db)
    assert verify.verify_offline(db, WINDOW, p.id).verification == "offline"
    with pytest.raises(PermissionDenied):
        verify.verify_offline(db, Principal(role=Role.doctor, hospital_id=1), p.id)


def test_id5_online_verification_asks_the_configured_verifier(
        db: Session, verifier: list[tuple[str, DocumentType, str]]) -> None:
    p = make_patient(db, name="真名")
    out = verify.verify_online(db, WINDOW, p.id)
    assert out.verification == "online" and out.verified_at is not None
    assert verifier[0][0] == "真名" and verifier[0][1] is DocumentType.resident_id_card
    fake = make_patient(db, name="冒名")
    with pytest.raises(verify.VerificationFailed):
        verify.verify_online(db, WINDOW, fake.id)


def test_id5_online_verification_without_a_verifier_is_refused_not_pretended(
        db: Session) -> None:
    verify.clear_verifiers()
    p = make_patient(db)
    with pytest.raises(verify.VerifierUnavailable):
        verify.verify_online(db, WINDOW, p.id)
    assert p.verification == "none"


def test_id4_a_health_card_swiped_at_a_kiosk_finds_the_patient(db: Session) -> None:
    p = make_patient(db)
    card = "0123456789ABCDEF" * 4
    service.add_document(db, WINDOW, p.id, document_type=DocumentType.health_card,
                         document_number=card)
    kiosk = Principal(role=Role.kiosk, hospital_id=1)
    assert service.access_patient_by_document(db, kiosk, DocumentType.health_card, card) == p
    with pytest.raises(PermissionDenied):
        service.access_patient(db, kiosk, p.id)  # no browsing by id from a public kiosk
    with pytest.raises(PermissionDenied):
        service.access_patient_by_document(db, Principal(role=Role.regulator),
                                           DocumentType.health_card, card)
