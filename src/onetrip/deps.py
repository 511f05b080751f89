"""Typed request dependencies: the unit of work and the acting principal.

The principal comes from a bearer token or a sign-in session (``Authorization: Bearer`` or
the ``onetrip_token`` cookie); staff sessions lapse after 30 idle minutes (identity.auth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.orm import Session

from onetrip.db import new_session
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
    db = new_session()
    try:
        if _writes_likely(request) and db.get_bind().dialect.name == "sqlite":
            _claim_sqlite_writer(db)
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        if audit.take_replayed(db):
            db.commit()
        raise
    finally:
        db.close()


def _writes_likely(request: Request) -> bool:
    # Signed-in requests write (audit rows, session activity), and so do form posts.
    return (request.method not in ("GET", "HEAD") or "authorization" in request.headers
            or TOKEN_COOKIE in request.cookies)


def _claim_sqlite_writer(db: Session) -> None:
    """Take SQLite's single writer lock before the first read (as BEGIN IMMEDIATE would).

    In WAL mode a transaction that read and then writes fails at once with "database is
    locked" if another connection committed in between; claiming the lock first makes it
    wait (busy_timeout) instead. The statement matches no row; PostgreSQL needs nothing.
    """
    db.execute(text("UPDATE sign_in_session SET id = id WHERE 1 = 0"))


# scope="function": the commit runs when the handler returns, before the response is sent
# (FastAPI's default "request" scope would commit after the client already saw success).
DbSession = Annotated[Session, Depends(get_db, scope="function")]


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
