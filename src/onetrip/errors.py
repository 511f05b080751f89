"""Errors carry a stable ``code``, an HTTP status and a Chinese message.

Services raise subclasses of :class:`OnetripError`; one handler renders them as JSON
``{"code", "message", "detail"}`` under ``/api``, as a FHIR OperationOutcome under ``/fhir``
and as a page with the message elsewhere.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OnetripError(Exception):
    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    message: ClassVar[str] = "请求无法完成"

    def __init__(self, message: str | None = None, *, detail: Any = None) -> None:
        self.text = message or self.message
        self.detail = detail
        super().__init__(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.text, "detail": self.detail}


class NotFound(OnetripError):
    code = "not_found"
    http_status = 404
    message = "未找到"


class InvalidInput(OnetripError):
    code = "invalid_input"
    http_status = 422
    message = "输入有误"


class Conflict(OnetripError):
    code = "conflict"
    http_status = 409
    message = "与现有数据冲突"


class NotAuthenticated(OnetripError):
    code = "not_authenticated"
    http_status = 401
    message = "请先登录"


class ValueOutOfRange(InvalidInput):
    code = "value_out_of_range"
    message = "输入的数字或日期超出范围"


class PermissionDenied(OnetripError):
    code = "permission_denied"
    http_status = 403
    message = "无权执行此操作"


# --- rendering -------------------------------------------------------------------------

_PYDANTIC_ZH = {
    "missing": "缺少必填项",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为是或否",
    "date_parsing": "日期格式应为YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为YYYY-MM-DD",
    "datetime_parsing": "时间格式应为ISO 8601",
    "datetime_from_date_parsing": "时间格式应为ISO 8601",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "string_pattern_mismatch": "格式不正确",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "json_invalid": "JSON格式有误",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为文本",
    "value_error": "取值无效",
}


def describe_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI validation errors as ``[{"field", "message"}]`` in Chinese."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        if err.get("type") == "json_invalid":  # its place is a character offset, no field
            loc = []
        text = _PYDANTIC_ZH.get(err.get("type", ""), "取值无效")
        out.append({"field": ".".join(loc), "message": text, "type": err.get("type")})
    return out


def install_handlers(app: Any) -> None:
    """Render every error the same way: JSON under /api and /healthz, a page elsewhere."""
    import logging

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from sqlalchemy.exc import DataError, StatementError
    from starlette.exceptions import HTTPException

    from onetrip.intake import InvalidText, Refused

    log = logging.getLogger("onetrip.errors")

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith(("/api/", "/fhir", "/healthz"))

    def render(request: Request, status: int, body: dict[str, Any]) -> Response:
        if request.url.path.startswith("/fhir"):
            from onetrip.fhir.outcome import outcome_response

            return outcome_response(status, body)
        if wants_json(request):
            return JSONResponse(body, status_code=status)
        from onetrip.web import render_page

        return render_page(request, "error.html", {"error": body}, status_code=status)

    @app.exception_handler(OnetripError)
    async def _onetrip(request: Request, exc: OnetripError) -> Response:
        return render(request, exc.http_status, exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = describe_validation_errors(exc.errors())
        if not wants_json(request):
            # A page's own forms answer beside their fields; this is a link or form a
            # person cannot mend, so no parameter names, only what to do.
            return render(request, 422, {
                "code": "invalid_request", "detail": None,
                "message": "提交的内容不完整或格式不正确，请返回上一页重新操作"})
        fields = "、".join(d["field"] for d in detail if d["field"]) or "请求"
        message = "请求体不是有效的 JSON" if any(d["type"] == "json_invalid" for d in detail) \
            else f"请求参数有误：{fields}"
        body = {"code": "invalid_request", "message": message, "detail": detail}
        return render(request, 422, body)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return render(request, exc.status_code, exc.to_dict())

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        codes = {404: ("not_found", "页面或资源不存在"),
                 405: ("method_not_allowed", "不支持该请求方法"),
                 401: ("not_authenticated", "请先登录"),
                 403: ("permission_denied", "无权访问")}
        code, message = codes.get(exc.status_code, ("http_error", "请求无法完成"))
        return render(request, exc.status_code, {"code": code, "message": message,
                                                 "detail": None})

    def out_of_range(exc: Exception) -> bool:
        """A number or date no column can hold (an id of 20 digits, the year 9999 moved on
        by a day): it reaches the database or the calendar only from a request, bad input.
        PostgreSQL's other data errors (a division by zero, a text too long) are bugs."""
        if isinstance(exc, DataError):  # numeric value out of range, datetime field overflow
            return getattr(exc.orig, "sqlstate", None) in ("22003", "22008")
        if isinstance(exc, StatementError):  # a bound value SQLAlchemy converts (to UTC)
            return isinstance(exc.orig, OverflowError)
        return isinstance(exc, OverflowError)

    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # A NUL the intake did not see (in an uploaded file's text) the driver refuses.
        if isinstance(exc, DataError) and "NUL (0x00)" in str(exc.orig):
            return render(request, 422, InvalidText().to_dict())
        if not out_of_range(exc):
            return await _unexpected(request, exc)
        log.warning("value out of range on %s %s", request.method, request.url.path,
                    exc_info=exc)
        return render(request, 422, ValueOutOfRange().to_dict())

    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(request, 500, {"code": "internal_error",
                                     "message": "系统繁忙，请稍后再试", "detail": None})

    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(StatementError, _out_of_range)  # DataError is one
    app.add_exception_handler(Exception, _unexpected)
