"""The SQL side of person search: one clause for every page that looks a person up by name.

The typed text is normalised by domain.search.normalise exactly like the stored key, so
spaces, widths and katakana/hiragana do not matter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_
from sqlalchemy.sql.elements import ColumnElement

from db.models import Person
from domain.search import normalise


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def person_matches(text: str, person: Any = Person) -> ColumnElement[bool]:
    """Name or kana contains ``text`` (normalised); ``person`` may be an alias of Person."""
    key = normalise(text)
    if not key:
        return false()
    return person.search_key.like(_like(key), escape="\\")


def person_or_org_matches(text: str, person: Any = Person) -> ColumnElement[bool]:
    """As person_matches, or the organisation or employee number contains the raw text."""
    raw = _like(text.strip())
    return or_(
        person_matches(text, person),
        person.organization.like(raw, escape="\\"),
        person.employee_no.like(raw, escape="\\"),
    )
