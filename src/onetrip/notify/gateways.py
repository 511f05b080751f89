"""HTTP adapters in the shape of the common Chinese providers (docs/notifications.md).

SMS: one signed JSON POST with the phone, signature name, template code, the template
parameters as a JSON string and our ``OutId``; the answer carries ``Code`` ("OK") and the
provider's ``BizId``. Gateways drop a second request with an ``OutId`` they have seen and
answer with the first ``BizId``: a retry after a lost answer sends nothing twice.

WeChat: an access token from ``/cgi-bin/token`` (kept until shortly before it expires), then
``/cgi-bin/message/template/send`` with ``touser`` (the openid), ``template_id``, ``url``,
``data`` and ``client_msg_id`` (WeChat's own guard against a repeated send).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from onetrip.config import get_settings
from onetrip.notify.channels import Outgoing, PermanentFailure

#: Provider codes that no retry can cure (the number or the template itself is wrong).
PERMANENT_SMS_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
                                 "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL",
                                 "isv.BLACK_KEY_CONTROL_LIMIT"})
#: WeChat: the user unfollowed or refused, the template id is wrong.
PERMANENT_WECHAT_CODES = frozenset({43004, 43101, 40037, 40003})


class GatewayError(Exception):
    """A refusal or an unreadable answer; the reason never holds the phone."""


def _national(phone: str) -> str:
    """Chinese gateways take mainland numbers without +86, others with the country code."""
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of timestamp, nonce and body, newline-separated."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{nonce}\n".encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _client() -> httpx.Client:
    return httpx.Client(timeout=get_settings().notify_gateway_timeout)


def send_sms(msg: Outgoing) -> str:
    """POST one templated SMS; returns the provider's BizId."""
    s = get_settings()
    if not s.notify_sms_url:
        raise GatewayError("ONETRIP_NOTIFY_SMS_URL is not set")
    body = json.dumps({"PhoneNumbers": _national(msg.phone), "SignName": s.notify_sms_sign_name,
                       "TemplateCode": msg.template_code,
                       "TemplateParam": json.dumps(msg.params, ensure_ascii=False),
                       "OutId": msg.out_id}, ensure_ascii=False).encode()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = uuid.uuid4().hex
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-Access-Key-Id": s.notify_sms_access_key_id, "X-Timestamp": timestamp,
               "X-Nonce": nonce, "X-Signature": sign(
                   s.notify_sms_access_key_secret.get_secret_value(), timestamp, nonce, body)}
    with _client() as client:
        reply = client.post(s.notify_sms_url, content=body, headers=headers)
    answer = _json(reply)
    code = str(answer.get("Code", ""))
    if reply.status_code == 200 and code == "OK" and answer.get("BizId"):
        return str(answer["BizId"])
    reason = f"HTTP {reply.status_code} {code} {answer.get('Message', '')}".strip()
    if code in PERMANENT_SMS_CODES:
        raise PermanentFailure(reason)
    raise GatewayError(reason)


def _json(reply: httpx.Response) -> dict[str, Any]:
    try:
        answer = reply.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


class _TokenCache:
    """WeChat's access token, shared by the worker's threads, renewed 5 minutes early."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: tuple[str, str, float] | None = None  # app id, token, expiry

    def get(self, client: httpx.Client, *, refresh: bool = False) -> str:
        s = get_settings()
        with self._lock:
            if not refresh and self._token and self._token[0] == s.notify_wechat_app_id \
                    and self._token[2] > time.monotonic():
                return self._token[1]
            reply = client.get(f"{s.notify_wechat_url.rstrip('/')}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": s.notify_wechat_app_id,
                "secret": s.notify_wechat_app_secret.get_secret_value()})
            answer = _json(reply)
            if not answer.get("access_token"):
                raise GatewayError(f"token: HTTP {reply.status_code} "
                                   f"{answer.get('errcode', '')} {answer.get('errmsg', '')}")
            expires = time.monotonic() + max(60, int(answer.get("expires_in", 7200)) - 300)
            self._token = (s.notify_wechat_app_id, str(answer["access_token"]), expires)
            return self._token[1]


TOKENS = _TokenCache()
#: WeChat errcodes that mean the token expired or was replaced: fetch a new one once.
_STALE_TOKEN = frozenset({40001, 40014, 42001})


def send_wechat(msg: Outgoing) -> str:
    """Send one template message to the openid; returns WeChat's msgid."""
    s = get_settings()
    template_id = s.notify_wechat_templates.get(msg.template)
    if not template_id:
        raise PermanentFailure(f"no WeChat template_id for {msg.template}")
    payload = {"touser": msg.openid, "template_id": template_id, "url": msg.link,
               "client_msg_id": msg.out_id,
               "data": {k: {"value": str(v)} for k, v in msg.params.items()}}
    url = f"{s.notify_wechat_url.rstrip('/')}/cgi-bin/message/template/send"
    with _client() as client:
        for refresh in (False, True):
            token = TOKENS.get(client, refresh=refresh)
            reply = client.post(url, params={"access_token": token}, json=payload)
            answer = _json(reply)
            errcode = int(answer.get("errcode", -1))
            if errcode not in _STALE_TOKEN:
                break
    if reply.status_code == 200 and errcode == 0 and answer.get("msgid"):
        return str(answer["msgid"])
    reason = f"HTTP {reply.status_code} errcode {errcode} {answer.get('errmsg', '')}".strip()
    if errcode in PERMANENT_WECHAT_CODES:
        raise PermanentFailure(reason)
    raise GatewayError(reason)
