"""FHIR JSON responses and errors rendered as OperationOutcome.

Every error under ``/fhir`` is an OperationOutcome whose issue carries the FHIR issue type
that fits the HTTP status (``not-found``, ``business-rule``, ``login`` ...) and, in
``details``, the stable OneTrip error code and its Chinese message, so a FHIR client and a
person reading a log see the same thing as the REST API reports.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from onetrip.errors import InvalidInput, NotFound

FHIR_JSON = "application/fhir+json"
ERROR_SYSTEM = "urn:onetrip:error"

_ISSUE_BY_STATUS = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                    405: "not-supported", 406: "not-supported", 409: "business-rule",
                    410: "deleted", 413: "too-long", 415: "not-supported", 422: "invalid",
                    429: "throttled"}
# Conflicts that are about the slot itself rather than a booking rule.
_ISSUE_BY_CODE = {"slot_taken": "conflict", "schedule_full": "conflict",
                  "hold_expired": "expired", "idempotency_key_reused": "conflict",
                  "fhir_unsupported": "not-supported", "fhir_unsupported_type": "not-supported",
                  "fhir_too_costly": "too-costly"}


class FhirResponse(JSONResponse):
    """JSON with the FHIR media type; Chinese text kept readable (UTF-8, not escaped)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode("utf-8")


class InvalidSearch(InvalidInput):
    code = "fhir_invalid_parameter"
    http_status = 400
    message = "查询参数有误"


class Unsupported(InvalidInput):
    code = "fhir_unsupported"
    http_status = 400
    message = "不支持该请求"


class TooCostly(InvalidInput):
    code = "fhir_too_costly"
    http_status = 400
    message = "查询范围过大"


class UnknownResource(NotFound):
    code = "fhir_resource_not_found"
    message = "未找到该资源"


def operation_outcome(status: int, code: str, message: str, detail: Any = None) -> dict[str, Any]:
    """One error issue: FHIR issue type, OneTrip code and message, and the detail as JSON."""
    issue: dict[str, Any] = {
        "severity": "fatal" if status >= 500 else "error",
        "code": _ISSUE_BY_CODE.get(code, _ISSUE_BY_STATUS.get(status, "exception"
                                                               if status >= 500 else "processing")),
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": message},
    }
    if detail:
        issue["diagnostics"] = json.dumps(detail, ensure_ascii=False, default=str)
        fields = [d["field"] for d in detail if isinstance(d, dict) and d.get("field")] \
            if isinstance(detail, list) else []
        if fields:
            issue["expression"] = fields
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(status: int, body: dict[str, Any]) -> FhirResponse:
    """The error handler's answer under /fhir (errors.install_handlers)."""
    headers = {"WWW-Authenticate": 'Bearer realm="onetrip"'} if status == 401 else None
    return FhirResponse(operation_outcome(status, str(body.get("code", "error")),
                                          str(body.get("message", "")), body.get("detail")),
                        status_code=status, headers=headers)


class UnsupportedType(NotFound):
    code = "fhir_unsupported_type"
    message = "不支持该资源类型"
