"""Whole numbers as people type them in forms and links: ASCII digits only.

``str.isdigit`` is true of ``²`` and of full-width ``１２``, which ``int`` then refuses or
reads; a form field or a link can hold anything. These read a number only when it is
written in plain digits, and an id only when a row can have it.
"""

from __future__ import annotations

import re

from onetrip.db import MAX_ID

#: 1 to 18 ASCII digits: within a 64-bit integer, so a database column can hold it.
_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_digits(raw: str) -> int | None:
    """The number ``raw`` writes in 1 to 18 ASCII digits, or None (``²`` is no digit here)."""
    return int(raw) if _DIGITS.fullmatch(raw) else None


def parse_id(raw: str) -> int | None:
    """The row id ``raw`` writes, or None for one no row can have (``db.MAX_ID``)."""
    value = parse_digits(raw)
    return value if value is not None and value <= MAX_ID else None
