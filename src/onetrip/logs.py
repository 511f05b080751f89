"""Logs never carry an identity number or a phone (PIPL): whatever a client puts into a URL,
the server's access log writes it down, so the records are masked before any handler."""

from __future__ import annotations

import logging
import re

from onetrip.identity.rules import mask_document

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])((?:(?:\+|%2[Bb])?86)?1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")

#: The loggers of the web server, whose messages hold request lines.
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """Mask resident ID numbers and mainland mobile numbers in free text."""
    text = _RESIDENT_ID.sub(lambda m: mask_document(m.group(0)), text)
    return _MOBILE.sub(r"\1****\2", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with identity numbers and phones masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_redaction() -> None:
    """Mask the web server's records (once per process, however many apps are created)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
