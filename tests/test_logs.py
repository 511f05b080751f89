"""PIPL: the web server's access log masks identity numbers and phones a client put in a URL."""

from __future__ import annotations

import io
import logging
from datetime import date

import pytest
from uvicorn.logging import AccessFormatter

from onetrip.logs import redact
from onetrip.main import create_app
from tests.factories import resident_id


def test_pipl_access_log_lines_are_masked_before_any_handler(
        caplog: pytest.LogCaptureFixture) -> None:
    create_app()
    number = resident_id(date(1980, 5, 6))
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
        f"/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|{number}&phone=%2B8613712345678",
        "1.1", 403)
    line = caplog.records[-1].getMessage()
    assert number not in line and "13712345678" not in line
    assert f"{number[:6]}********{number[-4:]}" in line and "137****5678" in line


@pytest.mark.parametrize("escape", ["%7C", "%2C", "%3A", "%20", "%E4%B8%89"])
def test_pipl_numbers_after_a_percent_escape_are_masked(escape: str) -> None:
    """A URL escapes the separator before the number (``identifier=urn:x|…`` is sent as
    ``urn:x%7C…``): the escape's last hex digit must not hide the number's start."""
    number = resident_id(date(1990, 3, 7))
    line = redact(f"/fhir/Patient?identifier=urn:x{escape}{number}&q={escape}13957500001")
    assert number not in line and "13957500001" not in line
    assert "139****0001" in line


def test_pipl_masking_keeps_the_access_formatter_working(
        capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn's access formatter reads the request line from the record's five arguments:
    masking must keep them, or the line is lost to a logging error."""
    create_app()
    logger = logging.getLogger("uvicorn.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter("%(request_line)s %(status_code)s", use_colors=False))
    logger.addHandler(handler)
    old_level, logger.level = logger.level, logging.INFO
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                    "/api/v1/hospitals?region=13957500001", "1.1", 404)
    finally:
        logger.removeHandler(handler)
        logger.level = old_level
    assert "GET /api/v1/hospitals?region=139****0001 HTTP/1.1 404" in stream.getvalue()
    assert "Logging error" not in capsys.readouterr().err


def test_pipl_a_number_given_as_an_integer_argument_is_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    create_app()
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    logging.getLogger("uvicorn.error").info("lookup %d failed", 13957500001)
    assert caplog.records[-1].getMessage() == "lookup 139****0001 failed"


@pytest.mark.parametrize("written", [
    "{id6} {id8} {id4}", "{id6}-{id8}-{id4}", "0086{phone}", "+86 {p3} {p4a} {p4b}",
    "{p3}-{p4a}-{p4b}", "{p3} {p4a} {p4b}"])
def test_pipl_numbers_written_with_separators_or_prefixes_are_masked(written: str) -> None:
    """The app strips spaces and dashes from what it is given, so a client may send them."""
    number, phone = resident_id(date(1990, 3, 7)), "13957500001"
    text = written.format(id6=number[:6], id8=number[6:14], id4=number[14:], phone=phone,
                          p3=phone[:3], p4a=phone[3:7], p4b=phone[7:])
    masked = redact(f"lookup {text} failed")
    digits = "".join(c for c in masked if c.isdigit())
    assert number[6:14] not in digits and "75000" not in digits, masked


def test_pipl_every_logger_and_every_traceback_is_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    """Not only the web server's records: the application's own, and the text of an
    exception logged with its traceback."""
    create_app()
    number = resident_id(date(1985, 1, 2))
    caplog.set_level(logging.INFO)
    logging.getLogger("onetrip.identity.test").info("patient %s", number)
    try:
        raise ValueError(f"no patient with document {number} or phone 13957500001")
    except ValueError:
        logging.getLogger("sqlalchemy.test").exception("lookup failed")
    assert number not in caplog.text and "13957500001" not in caplog.text
    assert f"{number[:6]}********{number[-4:]}" in caplog.text and "139****0001" in caplog.text


@pytest.mark.parametrize(("text", "kept"), [
    ("order 20261122083015123456", "20261122083015123456"),  # a 20-digit id is no ID number
    ("hash 9f3a13712345678ab", "9f3a13712345678ab"),  # digits inside a token
    ("at 2026-12-06 13:51:16.123456", "2026-12-06 13:51:16.123456"),  # a time
    ("took 1384 ms over 12345 rows", "took 1384 ms over 12345 rows"),
])
def test_pipl_redaction_leaves_other_numbers_alone(text: str, kept: str) -> None:
    assert kept in redact(text)
