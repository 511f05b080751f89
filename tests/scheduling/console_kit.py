"""Helpers for the console page tests: a signed-in client on a fixed clock."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.deps import get_now
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from tests.factories import make_token


def as_staff(client: TestClient, db: Session, role: Role, hospital: Hospital | None,
             now: datetime) -> TestClient:
    """Sign the client in with a token of ``role`` and pin the pages' clock to ``now``."""
    client.headers["Authorization"] = f"Bearer {make_token(db, role, hospital)}"
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
    return client


def at(client: TestClient, now: datetime) -> None:
    """Move the pages' clock."""
    client.app.dependency_overrides[get_now] = lambda: now  # type: ignore[attr-defined]
