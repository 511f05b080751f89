"""The one error handler: a value no column can hold is the request's fault (422); any
other data error of the database is the server's (500, logged with its traceback)."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from onetrip.errors import install_handlers


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _app(exc: Exception) -> TestClient:
    app = FastAPI()
    install_handlers(app)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("exc", "status", "code"), [
    (OverflowError("Python int too large to convert to SQLite INTEGER"), 422,
     "value_out_of_range"),
    (DataError("SELECT", {}, _Orig("22003")), 422, "value_out_of_range"),
    (DataError("SELECT", {}, _Orig("22008")), 422, "value_out_of_range"),
    (DataError("SELECT", {}, _Orig("22012")), 500, "internal_error"),  # division by zero
    (DataError("INSERT", {}, _Orig("22001")), 500, "internal_error"),  # text too long
])
def test_only_a_value_out_of_range_is_the_requests_fault(
        caplog: pytest.LogCaptureFixture, exc: Exception, status: int, code: str) -> None:
    caplog.set_level(logging.WARNING, logger="onetrip.errors")
    r = _app(exc).get("/api/v1/boom")
    assert r.status_code == status and r.json()["code"] == code
    [record] = [r for r in caplog.records if r.name == "onetrip.errors"]
    assert record.exc_info is not None  # the traceback is kept either way
    assert record.levelno == (logging.WARNING if status == 422 else logging.ERROR)


def test_a_body_that_is_no_json_is_named_as_the_body_not_a_character_offset() -> None:
    from onetrip.main import create_app

    r = TestClient(create_app()).post("/api/v1/appointments", content=b'{"slot_id": ',
                                      headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert r.json()["message"] == "请求体不是有效的 JSON"
    assert [d["field"] for d in r.json()["detail"]] == [""]
