"""Row ids and counts typed by a client (form fields, query parameters, cursors).

``str.isdigit()`` is not enough: it accepts digits ``int()`` refuses ("²") and numbers
past what the database stores (a larger one raised OverflowError in SQLite, "integer out
of range" in PostgreSQL: a 500 instead of a refusal).
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # Integer primary keys (people, areas, doors, ...): 32 bits in PostgreSQL
MAX_BIG_ID = 2**63 - 1  # BigInteger keys (events, audit_log)


def parse_id(value: object, limit: int = MAX_ID) -> int | None:
    """The non-negative integer ``value`` spells in ASCII digits up to ``limit``, else None."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 19:  # more digits than 2**63 - 1 has: refuse before int() does the work
        return None
    n = int(value)
    return n if n <= limit else None


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number past what an Integer key holds is no row, so
    the route does not match (404) instead of the database overflowing (a 500)."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)
