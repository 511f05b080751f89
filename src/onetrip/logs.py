"""Logs never carry an identity number or a phone (PIPL): whatever a client puts into a URL,
the server's access log writes it down, and an exception's text may quote what it was
given, so every record is masked as it is made, before any handler."""

from __future__ import annotations

import logging
import re
from typing import Any

from onetrip.identity.rules import mask_document

#: Where a number may start: after no letter or digit, or right after a percent escape (a
#: URL sends ``urn:x|110…`` as ``urn:x%7C110…``: the escape's last hex digit is no part of
#: the number).
_START = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
#: A resident ID number, also written in groups (``110101 19900307 1234``): the app strips
#: spaces and dashes from what it is given, so a client may send them.
_RESIDENT_ID = re.compile(_START + r"(\d{6})[ -]?(\d{8})[ -]?(\d{3}[\dXx])(?![0-9A-Za-z])")
#: A mainland mobile, with its country code (+86, 0086, an escaped +) and in groups.
_MOBILE = re.compile(_START + r"((?:(?:\+|%2[Bb]|00)?86[ -]?)?1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})"
                     r"(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """Mask resident ID numbers and mainland mobile numbers in free text."""
    text = _RESIDENT_ID.sub(lambda m: mask_document("".join(m.groups())), text)
    return _MOBILE.sub(r"\1****\2", text)


def _masked(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def mask_record(record: logging.LogRecord) -> None:
    """Mask identity numbers and phones in a record: its message and each of its arguments,
    keeping their shape (uvicorn's access formatter reads the request line from the five
    arguments of its records), and the text of its traceback and stack."""
    record.msg = _masked(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_masked(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _masked(v) for k, v in record.args.items()}
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call: logging reports it when it formats
        return
    masked = redact(message)
    if masked != message:  # a number only the formatting makes (an int argument, say)
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatters use the text made here rather than format the exception again.
        record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_TRACEBACKS = logging.Formatter()


def install_redaction() -> None:
    """Mask every log record of the process as it is made, whichever logger makes it
    (once per process, however many apps are created)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def masked(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        mask_record(record)
        return record

    masked.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)
