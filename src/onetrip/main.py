"""The ASGI application: every domain's API and page routers on one app."""

from __future__ import annotations

import gc
import os

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onetrip import __version__
from onetrip.config import get_settings
from onetrip.errors import install_handlers
from onetrip.intake import (
    Intake,
    refuse_cross_site,
    refuse_nul_in_upload_form,
    refuse_nul_in_url,
)
from onetrip.logs import install_redaction
from onetrip.web import STATIC_DIR


class RequestId:
    """Every request gets an id (the caller's ``X-Request-ID``, or a new one) that audit rows
    and the answer's ``X-Request-ID`` header carry. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` costs a task group and two streams a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (Headers(scope=scope).get("x-request-id") or os.urandom(16).hex())[:64]
        scope.setdefault("state", {})["request_id"] = rid

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        await self.app(scope, receive, with_id)


def create_app() -> FastAPI:
    from onetrip.exams import api as exams_api
    from onetrip.exams import pages as exams_pages
    from onetrip.fhir import api as fhir_api
    from onetrip.identity import api as identity_api
    from onetrip.identity import pages as identity_pages
    from onetrip.notify import api as notify_api
    from onetrip.notify import pages as notify_pages
    from onetrip.org import api as org_api
    from onetrip.org import pages as org_pages
    from onetrip.quality import api as quality_api
    from onetrip.quality import pages as quality_pages
    from onetrip.scheduling import api as scheduling_api
    from onetrip.scheduling import (
        console_admin,
        console_doctor,
        console_indicators,
        console_pages,
        console_policy,
        console_stop,
        console_window,
        kiosk_pages,
        portal_me_pages,
        portal_pages,
    )
    from onetrip.web import pages as web_pages

    app = FastAPI(
        title="OneTrip 最多跑一次",
        version=__version__,
        description="Real-name, minute-precise booking and one-trip care for a region.",
        # No OpenTelemetry here: FastAPI's own would look up three providers (and the
        # environment) on every request to find none configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(refuse_nul_in_url), Depends(refuse_cross_site),
                      Depends(refuse_nul_in_upload_form)],
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_handlers(app)
    install_redaction()

    app.add_middleware(RequestId)
    settings = get_settings()
    app.add_middleware(Intake, body_bytes=settings.max_body_bytes,
                       upload_bytes=settings.max_upload_bytes)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Starlette tries routes in order: the booking API, the busiest route, comes first.
    for router in (scheduling_api.router, org_api.router, org_pages.router, identity_api.router,
                   identity_pages.router, quality_api.router, quality_pages.router,
                   notify_api.router, notify_pages.router, fhir_api.router, exams_api.router,
                   exams_pages.router,
                   console_pages.router, console_window.router, console_doctor.router,
                   console_stop.router, console_admin.router, console_policy.router,
                   console_indicators.router):
        app.include_router(router)
    app.include_router(portal_pages.router)
    app.include_router(portal_me_pages.router)
    app.include_router(kiosk_pages.router)
    app.include_router(web_pages.router)
    return app


def serve_app() -> FastAPI:
    """The app as a server process runs it (``onetrip serve``): created, then its start-up
    objects frozen out of the garbage collector's sight (``gc.freeze``). A full collection
    then walks only what requests made, not the tens of thousands of objects of the
    libraries and routes; under load that halves the slowest answers (docs/benchmarks.md)."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
