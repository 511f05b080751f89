"""Identity use cases: tokens and the principal behind a request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.errors import InvalidInput, NotAuthenticated
from onetrip.identity.models import ApiToken
from onetrip.identity.rules import HOSPITAL_SCOPED, Role
from onetrip.org import service as org_service


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    message = "令牌无效或已吊销"


class HospitalScopeRequired(InvalidInput):
    code = "hospital_required"
    message = "该角色必须指定所属医院"


@dataclass(frozen=True)
class Principal:
    """Who is acting: a role, the hospital it is scoped to, and where it came from."""

    role: Role
    hospital_id: int | None = None
    token_id: int | None = None
    label: str = ""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Session, *, role: Role, hospital_code: str | None = None,
                 label: str = "") -> tuple[ApiToken, str]:
    """Create a bearer token; returns the row and the secret, shown once and never stored."""
    hospital_id = None
    if hospital_code is not None:
        hospital_id = org_service.access_hospital(db, hospital_code).id
    elif role in HOSPITAL_SCOPED:
        raise HospitalScopeRequired()
    secret = "ot_" + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=_hash(secret), prefix=secret[:10], role=role.value,
                   hospital_id=hospital_id, label=label)
    db.add(row)
    db.flush()
    return row, secret


def authenticate_token(db: Session, secret: str) -> Principal:
    """Resolve a bearer secret to its principal; raises InvalidToken."""
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(secret)))
    if row is None or row.revoked_at is not None:
        raise InvalidToken()
    return Principal(role=Role(row.role), hospital_id=row.hospital_id, token_id=row.id,
                     label=row.label)
