"""What every page shares: the large-font mode for the elderly, and the site icon.

The font choice lives in a cookie (no account needed), so it works on the portal, on a kiosk and
on public pages alike; a kiosk resets it when a patient's transaction ends.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response

from onetrip.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

FONT_COOKIE = "onetrip_font"
_YEAR = 365 * 24 * 3600


def safe_next(target: str, default: str = "/") -> str:
    """Only local paths: a preference form never sends the browser to another site."""
    return target if target.startswith("/") and not target.startswith("//") else default


@router.post("/prefs/font")
def set_font(size: Annotated[str, Form(pattern="^(large|normal)$")],
             next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    """大字模式 on or off, then back to the page the visitor was on."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if size == "large":
        response.set_cookie(FONT_COOKIE, "large", max_age=_YEAR, samesite="lax", httponly=True)
    else:
        response.delete_cookie(FONT_COOKIE)
    return response


@router.get("/favicon.ico")
def favicon() -> Response:
    """The site icon for clients that ask for /favicon.ico without reading the page's
    ``<link rel="icon">``: served here rather than answered with a 404 on every visit."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})
