"""Person pickers that search as you type instead of listing everyone.

A form's ``<select>`` is rendered with the first ``PICK_LIMIT`` candidates in name order
(plus the one already chosen); a search field beside it (static/app.js, ``picker``) asks a
JSON endpoint for at most ``PICK_LIMIT`` people whose name matches what is typed and
replaces the options. Every endpoint answers from bounded, index-served queries (db.search
for the name part, each part of it bounded on its own index), so a site with a million
people costs what a site with fifty does. Without JavaScript the select still offers the
first ``PICK_LIMIT``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from db.models import Person
from db.search import name_branches

PICK_LIMIT = 50
QUERY_MAX = 100


def pick(session: Session, query: Select[Person], text: str) -> dict[str, Any]:
    """``{"results": [{"id", "label"}], "more": bool}`` for a picker's search field."""
    text = text.strip()[:QUERY_MAX]
    if not text:
        people = list(session.scalars(query.limit(PICK_LIMIT + 1)))
    else:
        # each part of the name match bounded on its own index, then merged in name order
        # (db.search.name_branches): never every match of a common family name sorted
        found: dict[int, Person] = {}
        for cond, order in name_branches(session.get_bind().dialect.name, text):
            q = query.where(cond)
            if order:
                q = q.order_by(None).order_by(*order)
            for p in session.scalars(q.limit(PICK_LIMIT + 1)):
                found.setdefault(p.id, p)
        people = sorted(found.values(), key=lambda p: (p.kind, p.name, p.id))
    return {
        "results": [{"id": p.id, "label": label(p)} for p in people[:PICK_LIMIT]],
        "more": len(people) > PICK_LIMIT,
    }


def label(p: Person) -> str:
    return f"{p.name} ({p.organization})" if p.organization else p.name


def first(session: Session, query: Select[Person], chosen: int | None) -> list[Person]:
    """The select's initial options: the first ``PICK_LIMIT`` and the chosen person."""
    people = list(session.scalars(query.limit(PICK_LIMIT)))
    if chosen is not None and chosen not in {p.id for p in people}:
        extra = session.scalar(query.where(Person.id == chosen).limit(1))
        if extra is not None:
            people.insert(0, extra)
    return people
