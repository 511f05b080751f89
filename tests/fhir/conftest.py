"""The scheduling clinic (one Monday session), a fake clock, and FHIR model validation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.identity import auth as identity_auth
from onetrip.identity.models import Account, Patient
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import auth, make_account, make_patient, make_token
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic, chinese_name, clinic, local

__all__ = ["CREATED", "DAY", "OPEN", "Clinic", "clinic", "local"]


@pytest.fixture
def at(client: TestClient) -> Iterator[Any]:
    """Set the server's clock: ``at(OPEN)``; OPEN until a test says otherwise."""

    def move(moment: datetime) -> None:
        client.app.dependency_overrides[get_now] = lambda: moment  # type: ignore[attr-defined]

    move(OPEN)
    yield move


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate with fhir.resources (R4B models, identical to R4 for the resources served
    here) and return the resource; a Bundle's entries are validated as well."""
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)
    for entry in resource.get("entry", []):
        valid(entry["resource"])
    return resource


def fhir_json(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return valid(response.json())


def patient_session(db: Session) -> tuple[Patient, dict[str, str]]:
    """A patient registered by its own phone account, and that account's bearer header."""
    account = make_account(db)
    patient = make_patient(db, principal=account, name=chinese_name())
    assert account.account_id is not None
    return patient, auth(identity_auth.start_session(db, account=db.get_one(
        Account, account.account_id)))


def staff(db: Session, role: Role, hospital: Hospital | None) -> dict[str, str]:
    return auth(make_token(db, role, hospital))
