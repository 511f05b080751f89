"""Typed request dependencies: the unit of work and the acting principal.

The principal comes from a bearer token or a sign-in session (``Authorization: Bearer`` or
the ``onetrip_token`` cookie); staff sessions lapse after 30 idle minutes (identity.auth).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from onetrip.db import get_engine, new_session, session_scope, utcnow
from onetrip.errors import NotAuthenticated, PermissionDenied
from onetrip.identity import audit
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal

TOKEN_COOKIE = "onetrip_token"
T = TypeVar("T")


_gates: dict[tuple[int, bool], asyncio.Semaphore] = {}


def _gate(write: bool) -> asyncio.Semaphore:
    engine = get_engine()
    if engine.dialect.name == "sqlite" and write:
        size = 1  # one SQLite writer at a time per process
    else:
        size = engine.pool.size() + max(0, engine.pool._max_overflow)  # type: ignore[attr-defined]
    key = (id(asyncio.get_running_loop()), size == 1)
    return _gates.setdefault(key, asyncio.Semaphore(size))


def writes_likely(request: Request) -> bool:
    """Signed-in requests write (audit rows, session activity), and so do form posts.

    On SQLite such a request begins with the write lock (BEGIN IMMEDIATE): in WAL mode a
    transaction that read and then writes fails at once if another one committed between.
    """
    return (request.method not in ("GET", "HEAD", "OPTIONS")
            or "authorization" in request.headers or TOKEN_COOKIE in request.cookies)


async def db_admission(request: Request) -> AsyncIterator[None]:
    """Admit a request to the database only when a connection (or, for a SQLite write, the
    write lock) is free; until then it waits here, on the event loop.

    Waiting costs no worker thread. Without this gate, threads blocked on an exhausted
    connection pool (or SQLite's busy handler) fill the thread pool, and the requests that
    hold connections can no longer get a thread to finish: the server stalls.
    """
    async with _gate(writes_likely(request)):
        yield


class ShortUnits:
    """Runs small units of work of their own (their own transaction, committed at once)
    from async code that must not hold a thread while it waits for the database."""

    async def __call__(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
        from starlette.concurrency import run_in_threadpool

        def run() -> T:
            with session_scope(write=write) as db:
                return fn(db)

        async with _gate(write):
            return await run_in_threadpool(run)


async def get_short_units() -> ShortUnits:
    return ShortUnits()


Units = Annotated[ShortUnits, Depends(get_short_units)]


def get_db(request: Request,
           _admitted: Annotated[None, Depends(db_admission)]) -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, else rolled back.

    A refused access leaves a denied audit row that must survive the rollback; it is written
    again after the rollback and committed on its own.
    """
    db = new_session(write=writes_likely(request))
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


# scope="function": the commit runs when the handler returns, before the response is sent
# (FastAPI's default "request" scope would commit after the client already saw success).
DbSession = Annotated[Session, Depends(get_db, scope="function")]


async def get_now() -> datetime:
    """The current instant; tests override this dependency to drive a fake clock."""
    return utcnow()


Now = Annotated[datetime, Depends(get_now)]


def secret_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(TOKEN_COOKIE) or None


def get_principal(request: Request, db: DbSession) -> Principal | None:
    secret = secret_from(request)
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
