"""A local HTTP server that answers like a Chinese SMS gateway and WeChat's API.

Real sockets and a real HTTP exchange (``httpx`` is not mocked): the adapters are tested as
they run against a provider. ``script`` lists scripted answers for the next requests
(``"ok"``, ``"lost"``: accepted but answered 502, an HTTP status, or a provider code).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from onetrip.notify.gateways import sign

SECRET = "test-secret-key"


@dataclass
class Gateway:
    url: str = ""
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[str, str] = field(default_factory=dict)  # out id -> provider id
    handset: list[str] = field(default_factory=list)  # what phones received, in order
    tokens_issued: int = 0
    bad_signatures: int = 0

    def next_answer(self) -> str:
        return self.script.pop(0) if self.script else "ok"


def _handler(gw: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # WeChat's token endpoint
            gw.tokens_issued += 1
            self._reply(200, {"access_token": f"token-{gw.tokens_issued}", "expires_in": 7200})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            url = urlparse(self.path)
            if url.path.endswith("/template/send"):
                return self._wechat(json.loads(raw), parse_qs(url.query))
            expected = sign(SECRET, self.headers["X-Timestamp"], self.headers["X-Nonce"], raw)
            if self.headers["X-Signature"] != expected:
                gw.bad_signatures += 1
                return self._reply(403, {"Code": "SignatureDoesNotMatch"})
            body = json.loads(raw)
            gw.requests.append(body)
            answer = gw.next_answer()
            if answer.isdigit():
                return self._reply(int(answer), {"Code": "ServiceUnavailable",
                                                 "Message": "gateway busy"})
            if answer not in ("ok", "lost"):
                return self._reply(200, {"Code": answer, "Message": "refused"})
            out_id = body["OutId"]
            if out_id not in gw.delivered:  # a repeated OutId is not sent again
                gw.delivered[out_id] = f"biz-{len(gw.delivered) + 1}"
                gw.handset.append(body["PhoneNumbers"])
            if answer == "lost":
                return self._reply(502, {})
            self._reply(200, {"Code": "OK", "Message": "OK", "BizId": gw.delivered[out_id]})

        def _wechat(self, body: dict[str, Any], query: dict[str, list[str]]) -> None:
            gw.requests.append({**body, "access_token": query["access_token"][0]})
            answer = gw.next_answer()
            if answer != "ok":
                return self._reply(200, {"errcode": int(answer), "errmsg": "refused"})
            out_id = body["client_msg_id"]
            if out_id not in gw.delivered:
                gw.delivered[out_id] = str(200000 + len(gw.delivered))
                gw.handset.append(body["touser"])
            self._reply(200, {"errcode": 0, "errmsg": "ok", "msgid": int(gw.delivered[out_id])})

    return Handler


def serve() -> Iterator[Gateway]:
    gw = Gateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gw))
    gw.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()
