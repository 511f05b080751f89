"""Typed request dependencies: the unit of work and the acting principal.

The principal comes from a bearer token or a sign-in session (``Authorization: Bearer`` or
the ``onetrip_token`` cookie); staff sessions lapse after 30 idle minutes (identity.auth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from onetrip.db import new_session, utcnow
from onetrip.errors import NotAuthenticated, PermissionDenied
from onetrip.identity import audit
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal

TOKEN_COOKIE = "onetrip_token"


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, else rolled back.

    A refused access leaves a denied audit row that must survive the rollback; it is written
    again after the rollback and committed on its own.
    """
    db = new_session(write=request.method not in ("GET", "HEAD", "OPTIONS"))
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        if audit.take_replayed(db):
            db.commit()
        raise
    finally:
        db.close()


DbSession = Annotated[Session, Depends(get_db)]


def get_now() -> datetime:
    """The current instant; tests override this dependency to drive a fake clock."""
    return utcnow()


Now = Annotated[datetime, Depends(get_now)]


def _secret_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(TOKEN_COOKIE) or None


def get_principal(request: Request, db: DbSession) -> Principal | None:
    secret = _secret_from(request)
    if secret is None:
        return None
    principal = identity_service.authenticate_token(
        db, secret, request_id=getattr(request.state, "request_id", ""),
        client_ip=request.client.host if request.client else "")
    request.state.principal = principal
    return principal


def require_principal(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
    if principal is None:
        raise NotAuthenticated()
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """Dependency that lets only ``roles`` through (401 when signed out, 403 otherwise)."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise PermissionDenied(detail={"role": principal.role.value})
        return principal

    return check
