"""Sign-in pages. Staff consoles and kiosks sign in with a bearer token kept in a cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from onetrip.deps import TOKEN_COOKIE, DbSession
from onetrip.errors import NotAuthenticated
from onetrip.identity import service as identity_service
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only local paths: never redirect a signed-in user to another site.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/staff/sign-in")
def sign_in_page(request: Request, next: str = "/admin/calendar") -> Response:
    return render_page(request, "staff_sign_in.html", {"next": _safe_next(next)})


@router.post("/staff/sign-in")
def sign_in(request: Request, db: DbSession, token: Annotated[str, Form(max_length=200)],
            next: Annotated[str, Form()] = "/admin/calendar") -> Response:
    try:
        identity_service.authenticate_token(db, token.strip())
    except NotAuthenticated as exc:
        return render_page(request, "staff_sign_in.html",
                           {"next": _safe_next(next), "error": exc.text}, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/staff/sign-out")
def sign_out() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response
