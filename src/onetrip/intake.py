"""What comes in is checked before a route uses it (docs/architecture.md, "Request sizes").

**Sizes.** A JSON or form body may hold ``max_body_bytes`` (1 MB: a booking is a few hundred
bytes, the largest form a few kilobytes); a file upload (``multipart/form-data``: the quality
data, the schedule sheet) ``max_upload_bytes``, which the form parser spools to disk. The
limit is checked against the declared Content-Length at the first read and against the bytes
as they arrive, so a body sent in chunks cannot pass it either.

**NUL characters.** PostgreSQL cannot hold a NUL in text (the driver refuses the value), and
SQLite would store it unseen; no person types one. A NUL in the link (path or query), in a
form body (``%00``) or in a JSON body (``\\u0000``) is refused on every database alike, and
so is one in the text fields of a file upload or in the name of its file (which an import
keeps). The file itself may hold any byte: its reader checks it.

**Other sites.** A request that changes something (any method but GET, HEAD and OPTIONS),
signed in by the session cookie rather than a bearer token, is refused with 403
``cross_site_request`` when the browser says another site sent it: an ``Origin`` other than
our own (the request's Host, or ``public_url`` behind a proxy), or, without an ``Origin``,
``Sec-Fetch-Site: cross-site``. The cookie is ``SameSite=Strict`` already; this is the
second lock, for a browser that ignores it. A bearer token cannot be forged by another
site, and a client that names no origin (a script) is no browser led astray.

The read that finds a fault raises inside the route, before the route has done anything,
and the app's error handlers answer in the route's own form (JSON under /api, an
OperationOutcome under /fhir, a Chinese page elsewhere): 413 ``body_too_large`` or 422
``invalid_text``.

A plain ASGI middleware of our own, not Starlette's ``RequestBodyLimitMiddleware``: that one
also answers 413 in place of the response of a route that never read the body, after the
route has done its work (a cancellation sent with a large body would be made and reported
refused). Here a route that does not read its body is not concerned by what it holds.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onetrip.config import get_settings

#: A NUL as each kind of body writes it; the longest is what a chunk must keep of its end.
_NUL_IN = {"application/x-www-form-urlencoded": (b"%00", b"\x00"),
           "application/json": (b"\\u0000", b"\x00"),
           "application/fhir+json": (b"\\u0000", b"\x00")}
_KEEP = 5


class Refused(HTTPException):
    """A request refused at intake. An HTTPException, so that FastAPI's body parsing lets
    it through to the handlers (it turns any other exception of a read into a 400)."""

    code = "error"

    def __init__(self, status: int, message: str, detail: object = None) -> None:
        super().__init__(status, message)
        self.info = detail

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.detail, "detail": self.info}


class BodyTooLarge(Refused):
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求体过大：不能超过{limit}字节", {"limit_bytes": limit})


class InvalidText(Refused):
    code = "invalid_text"

    def __init__(self) -> None:
        super().__init__(422, "输入中含有无效字符（NUL），请删除后重试")


class CrossSiteRequest(Refused):
    code = "cross_site_request"

    def __init__(self) -> None:
        super().__init__(403, "请求来自其他网站，已拒绝。请在本系统的页面上重新操作")


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def refuse_cross_site(request: Request) -> None:
    """The app's dependency for every route: no change another site's page asked for.
    Async and read from the scope: it runs for every request, and a plain function would
    take a turn of the thread pool each time."""
    if request.scope["method"] in _SAFE_METHODS:
        return
    headers = request.headers
    if headers.get("authorization", "")[:7].lower() == "bearer ":
        return  # a bearer token is the credential, not the cookie (HTTP Basic is no token)
    origin = headers.get("origin")
    if origin is None:
        if headers.get("sec-fetch-site") == "cross-site":
            raise CrossSiteRequest()
        return
    own = _origin(request.scope.get("scheme", "http"), headers.get("host", ""))
    if _origin(*origin.split("://", 1)) not in (own, _public_origin()):
        raise CrossSiteRequest()


def _origin(scheme: str, host: str = "") -> str:
    """An origin as one compares them: lower case, without the scheme's default port."""
    scheme, host = scheme.lower(), host.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host.removesuffix(default)
    return f"{scheme}://{host}"


@lru_cache(maxsize=4)
def _public_from(url: str) -> str:
    public = urlsplit(url)
    return _origin(public.scheme, public.netloc)


def _public_origin() -> str:
    return _public_from(get_settings().public_url)


async def refuse_nul_in_url(request: Request) -> None:
    """The app's dependency for every route: no NUL in the path (decoded already) or the
    query string (as sent). Read from the scope: building ``request.url`` costs more."""
    query = request.scope.get("query_string", b"")
    if "\x00" in request.scope["path"] or b"%00" in query or b"\x00" in query:
        raise InvalidText()


async def refuse_nul_in_upload_form(request: Request) -> None:
    """The app's dependency for every route: no NUL in a multipart form's field names, text
    fields or file names. Only a form the route itself parsed (its parameters read it before
    any dependency runs, and Starlette keeps it on the request): a route that takes no form
    is not concerned by the body it was sent, which is never read."""
    form = getattr(request, "_form", None)
    if form is None:
        return
    for name, value in form.multi_items():
        text = value.filename or "" if isinstance(value, UploadFile) else value
        if "\x00" in name or "\x00" in text:
            raise InvalidText()


class Intake:
    """Refuse a body larger than its limit, or holding a NUL, as the app reads it."""

    def __init__(self, app: ASGIApp, *, body_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.body_bytes = body_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.upload_bytes if kind == "multipart/form-data" else self.body_bytes
        nul = _NUL_IN.get(kind, ())
        declared = headers.get("content-length", "")
        declared_too_large = declared.isascii() and declared.isdigit() and int(declared) > limit
        received = 0
        tail = b""

        async def checked() -> Message:
            nonlocal received, tail
            if declared_too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                if nul:
                    seen = tail + chunk
                    if any(n in seen for n in nul):
                        raise InvalidText()
                    tail = seen[-_KEEP:]
            return message

        await self.app(scope, checked, send)
