"""PIPL: the web server's access log masks identity numbers and phones a client put in a URL."""

from __future__ import annotations

import logging
from datetime import date

import pytest

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


@pytest.mark.parametrize(("text", "kept"), [
    ("order 20261122083015123456", "20261122083015123456"),  # a 20-digit id is no ID number
    ("hash 9f3a13712345678ab", "9f3a13712345678ab"),  # digits inside a token
])
def test_pipl_redaction_leaves_other_numbers_alone(text: str, kept: str) -> None:
    assert kept in redact(text)
