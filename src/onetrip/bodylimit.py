"""Request bodies are bounded before they reach memory (docs/architecture.md, "Request sizes").

A JSON or form body may hold ``max_body_bytes`` (1 MB: a booking is a few hundred bytes, the
largest form a few kilobytes); a file upload (``multipart/form-data``: the quality data, the
schedule sheet) ``max_upload_bytes``, which the form parser spools to disk. The limit is
checked against the declared Content-Length at the first read and against the bytes as they
arrive, so a body sent in chunks cannot pass it either. The read that passes it raises
:class:`BodyTooLarge` inside the route, before the route has done anything, and the app's
error handlers answer 413 ``body_too_large`` in the route's own form: JSON under /api, an
OperationOutcome under /fhir, a Chinese page elsewhere.

A plain ASGI middleware of our own, not Starlette's ``RequestBodyLimitMiddleware``: that one
also answers 413 in place of the response of a route that never read the body, after the
route has done its work (a cancellation sent with a large body would be made and reported
refused). Here a route that does not read its body is not concerned by its size.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing lets it through to the handlers
    (it turns any other exception of a read into a 400)."""

    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求体过大：不能超过{limit}字节")
        self.limit = limit

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.detail,
                "detail": {"limit_bytes": self.limit}}


class BodyLimit:
    """Refuse a body larger than its limit as the app reads it."""

    def __init__(self, app: ASGIApp, *, body_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.body_bytes = body_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = self.upload_bytes if upload else self.body_bytes
        declared = headers.get("content-length", "")
        declared_too_large = declared.isascii() and declared.isdigit() and int(declared) > limit
        received = 0

        async def bounded() -> Message:
            nonlocal received
            if declared_too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded, send)
