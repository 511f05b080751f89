"""Logs never carry an identity number or a phone (PIPL): whatever a client puts into a URL,
the server's access log writes it down, so the records are masked before any handler."""

from __future__ import annotations

import logging
import re

from onetrip.identity.rules import mask_document

#: Where a number may start: after no letter or digit, or right after a percent escape (a
#: URL sends ``urn:x|110…`` as ``urn:x%7C110…``: the escape's last hex digit is no part of
#: the number).
_START = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
_RESIDENT_ID = re.compile(_START + r"\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(_START + r"((?:(?:\+|%2[Bb])?86)?1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")

#: The loggers of the web server, whose messages hold request lines.
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """Mask resident ID numbers and mainland mobile numbers in free text."""
    text = _RESIDENT_ID.sub(lambda m: mask_document(m.group(0)), text)
    return _MOBILE.sub(r"\1****\2", text)


def _masked(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Masks identity numbers and phones in a record's message and in each of its
    arguments, keeping their shape: uvicorn's access formatter reads the request line from
    the five arguments of its records."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _masked(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        message = record.getMessage()
        masked = redact(message)
        if masked != message:  # a number only the formatting makes (an int argument, say)
            record.msg, record.args = masked, ()
        return True


def install_redaction() -> None:
    """Mask the web server's records (once per process, however many apps are created)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
