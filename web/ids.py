"""Row ids and counts typed by a client (form fields, query parameters, cursors).

``str.isdigit()`` is not enough: it accepts digits ``int()`` refuses ("²") and numbers
past what the database stores (SQLite and PostgreSQL keep 64-bit integers; a larger one
raised OverflowError inside the query, a 500 instead of a refusal).
"""

from __future__ import annotations

MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """The non-negative integer ``value`` spells in ASCII digits within 64 bits, else None."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 19:  # more digits than 2**63 - 1 has: refuse before int() does the work
        return None
    n = int(value)
    return n if n <= MAX_ID else None
