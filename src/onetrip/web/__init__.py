"""Shared page machinery: one Jinja2 environment over every domain's templates."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.numbers import parse_id
from onetrip.org import rules as org_rules

PACKAGE = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(get_settings().tz).strftime(fmt)


def _weekday(value: date) -> str:
    return org_rules.WEEKDAY_LABELS[value.isoweekday() - 1]


@lru_cache
def templates() -> Jinja2Templates:
    dirs = [PACKAGE / "web" / "templates",
            *sorted(p for p in PACKAGE.glob("*/templates") if p.parent.name != "web")]
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
                      autoescape=select_autoescape(["html", "xml"]))
    env.filters["local"] = _local
    env.filters["weekday"] = _weekday
    env.globals.update(
        TITLE_LABELS=org_rules.TITLE_LABELS,
        SERVICE_LEVEL_LABELS=org_rules.SERVICE_LEVEL_LABELS,
        LEVEL_LABELS=org_rules.LEVEL_LABELS,
        KIND_LABELS=org_rules.KIND_LABELS,
    )
    return Jinja2Templates(env=env)


def link_int(raw: str) -> int | None:
    """A whole number from a link's query string, or None for anything else.

    Flash links name a record by id and the page reads the message's values from it; a link
    can be typed by anyone, so a value that is not a plain number (or no row's id) is ignored
    rather than answered with an error page."""
    return parse_id(raw.strip())


def render_page(request: Request, name: str, context: dict[str, Any] | None = None,
                status_code: int = 200) -> Response:
    """Render a page; htmx requests get the same template (partials check ``hx``)."""
    ctx = {"hx": request.headers.get("hx-request") == "true", **(context or {})}
    return templates().TemplateResponse(request, name, ctx, status_code=status_code)
