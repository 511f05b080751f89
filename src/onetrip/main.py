"""The ASGI application: every domain's API and page routers on one app."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from onetrip import __version__
from onetrip.errors import install_handlers
from onetrip.logs import install_redaction
from onetrip.web import STATIC_DIR


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
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_handlers(app)
    install_redaction()

    @app.middleware("http")
    async def request_id(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid[:64]
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in (org_api.router, org_pages.router, identity_api.router, identity_pages.router,
                   scheduling_api.router, quality_api.router, quality_pages.router,
                   notify_api.router, notify_pages.router, fhir_api.router, exams_api.router,
                   exams_pages.router,
                   console_pages.router, console_window.router, console_doctor.router,
                   console_stop.router, console_admin.router, console_policy.router):
        app.include_router(router)
    app.include_router(portal_pages.router)
    app.include_router(portal_me_pages.router)
    app.include_router(kiosk_pages.router)
    app.include_router(web_pages.router)
    return app
