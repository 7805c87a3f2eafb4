"""Staff CSV import and export against the database: the one code path for the console
(preview, then confirm) and ``nyutai people import|export``.

Built for a site with a million people: rows are checked in batches of BATCH, each batch
looking up only its own employee numbers, cards and trainings, so neither the people table
nor the file's changes are ever held in memory at once.

Import is all-or-nothing at the rule level: a first pass checks every row and writes
nothing; only a file without problems is applied, by a second pass that commits batch by
batch (a single long write transaction would hold SQLite's write lock for the whole file
and keep the controller from recording doors). Re-running a file is harmless: rows are
matched on the employee number and a second run changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import AuditLog, Credential, CredentialState, Person, PersonKind, Training
from db.types import utcnow
from domain.csvsafe import SafeCsvWriter
from domain.people_csv import (
    COLUMNS,
    CsvFileError,
    StaffRow,
    decode,
    format_cards,
    header_line,
    read_rows,
)
from domain.search import search_key
from web.cards import CardIdError, normalise_card_id

BATCH = 500
SHOWN = 200  # rows listed in a preview (the counts cover the whole file)
DEFAULT_COURSE = "特定個人情報の取扱いに関する研修"  # the course a CSV training date records
OPTIONAL_FIELDS = ("name_kana", "organization", "designated")  # kept when the column is absent
COUNTERS = {"create": "created", "update": "updated", "unchanged": "unchanged"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Outcome:
    """What a file does (preview) or did (applied)."""

    sha256: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problem_rows: int = 0
    shown: list[tuple[StaffRow, str]] = field(default_factory=list)  # (row, action)
    file_problem: CsvFileError | None = None
    applied: bool = False

    @property
    def ok(self) -> bool:
        return self.file_problem is None and self.problem_rows == 0


def _batches(rows: Iterator[StaffRow]) -> Iterator[list[StaffRow]]:
    while batch := list(islice(rows, BATCH)):
        yield batch


def _unescape(value: str | None) -> str | None:
    # the export protects cells from spreadsheet formulas with a leading quote: take it off
    if value and value.startswith("'") and value[1:2] in FORMULA_START:
        return value[1:]
    return value


class _Checker:
    """Per-file state: employee numbers and cards already seen earlier in the file."""

    def __init__(self) -> None:
        self.employee_nos: set[str] = set()
        self.cards: dict[tuple[str, str], str] = {}

    def check(self, db: Session, batch: list[StaffRow]) -> dict[str, Any]:
        """Add the database's objections to each row; return the batch's lookups."""
        for row in batch:
            row.employee_no = _unescape(row.employee_no) or ""
            row.name = _unescape(row.name) or ""
            row.name_kana, row.organization = _unescape(row.name_kana), _unescape(row.organization)
            cards = []
            for tech, raw in row.cards:
                if not tech:
                    row.problem("card_unknown_kind", raw)
                    continue
                try:
                    cards.append(normalise_card_id(tech, raw))
                except CardIdError as exc:
                    row.problem("card_invalid", f"{raw}: {exc}")
            row.cards = cards
        numbers = [r.employee_no for r in batch if r.employee_no]
        people = {
            p.employee_no: p
            for p in db.scalars(select(Person).where(Person.employee_no.in_(numbers)))
        }
        keys = list({c for r in batch for c in r.cards})
        owners: dict[tuple[str, str], int | None] = {}
        by_tech: dict[str, list[str]] = {}
        for tech, card_id in keys:
            by_tech.setdefault(tech, []).append(card_id)
        for tech, card_ids in by_tech.items():
            # one technology at a time: the (technology, card_id) unique index serves it
            # (a row-value IN is scanned by SQLite)
            for card_id, owner in db.execute(
                select(Credential.card_id, Credential.person_id).where(
                    Credential.technology == tech, Credential.card_id.in_(card_ids)
                )
            ):
                owners[(tech, card_id)] = owner
        ids = [p.id for p in people.values()]
        trained: set[tuple[int, date]] = set()
        if ids:
            trained = {
                (pid, d)
                for pid, d in db.execute(
                    select(Training.person_id, Training.completed_on).where(
                        Training.person_id.in_(ids)
                    )
                )
            }
        for row in batch:
            if row.employee_no:
                if row.employee_no in self.employee_nos:
                    row.problem("employee_no_repeated", row.employee_no)
                self.employee_nos.add(row.employee_no)
            person = people.get(row.employee_no)
            if person is not None and person.kind != PersonKind.STAFF:
                row.problem("employee_no_visitor", row.employee_no)
            for key in row.cards:
                earlier = self.cards.get(key)
                if earlier is not None and earlier != row.employee_no:
                    row.problem("card_repeated", key[1])
                self.cards.setdefault(key, row.employee_no)
                if key in owners and (person is None or owners[key] != person.id):
                    row.problem("card_taken", key[1])
        return {"people": people, "owners": owners, "trained": trained}


def _action(row: StaffRow, present: set[str], found: dict[str, Any]) -> str:
    person: Person | None = found["people"].get(row.employee_no)
    if person is None:
        return "create"
    changed = person.name != row.name or any(
        f in present and getattr(person, f) != getattr(row, f) for f in OPTIONAL_FIELDS
    )
    new_card = any(k not in found["owners"] for k in row.cards)
    new_training = (
        row.training_date is not None and (person.id, row.training_date) not in found["trained"]
    )
    return "update" if changed or new_card or new_training else "unchanged"


def _apply(db: Session, row: StaffRow, present: set[str], found: dict[str, Any]) -> None:
    person: Person | None = found["people"].get(row.employee_no)
    if person is None:
        person = Person(kind=PersonKind.STAFF, employee_no=row.employee_no, active=True)
        person.designated = False
        db.add(person)
    person.name = row.name
    for f in OPTIONAL_FIELDS:
        if f in present:
            setattr(person, f, getattr(row, f))
    # given here rather than by the column default: a callable default makes SQLAlchemy
    # insert row by row instead of in batches
    person.search_key = search_key(person.name, person.name_kana)
    # the batch is flushed once, at its commit: a new person's cards and training hang on
    # the relationship; an existing person's take the id (no lazy load of their lists)
    link: dict[str, Any] = {"person": person} if person.id is None else {"person_id": person.id}
    for tech, card_id in row.cards:
        if (tech, card_id) not in found["owners"]:
            db.add(
                Credential(technology=tech, card_id=card_id, state=CredentialState.ACTIVE, **link)
            )
    if row.training_date is not None and (person.id, row.training_date) not in found["trained"]:
        db.add(Training(course=DEFAULT_COURSE, completed_on=row.training_date, **link))


def _present_keys(text: str) -> set[str]:
    from domain.people_csv import header_keys

    first = next(csv.reader(io.StringIO(text, newline="")), [])
    return {k for k in header_keys(first) if k}


def _pass(db: Session, text: str, today: date, outcome: Outcome, apply: bool) -> None:
    present = _present_keys(text)
    checker = _Checker()
    for batch in _batches(read_rows(text, today)):
        found = checker.check(db, batch)
        for row in batch:
            action = "problem" if row.problems else _action(row, present, found)
            if not apply:
                outcome.rows += 1
                if row.problems:
                    outcome.problem_rows += 1
                else:
                    counter = COUNTERS[action]
                    setattr(outcome, counter, getattr(outcome, counter) + 1)
                if len(outcome.shown) < SHOWN and (row.problems or action != "unchanged"):
                    outcome.shown.append((row, action))
            elif action in ("create", "update"):
                _apply(db, row, present, found)
        if apply:
            db.commit()
        db.expunge_all()  # the identity map must not grow with the file


def import_people(
    db: Session,
    data: bytes,
    today: date,
    *,
    apply: bool,
    username: str | None = None,
    operator_id: int | None = None,
    remote_addr: str | None = None,
    filename: str | None = None,
) -> Outcome:
    """Check a file (``apply=False``: the preview) or check and then apply it."""
    outcome = Outcome(sha256=hashlib.sha256(data).hexdigest())
    try:
        text = decode(data)
        _pass(db, text, today, outcome, apply=False)
    except CsvFileError as exc:
        db.rollback()
        outcome.file_problem = exc
        return outcome
    db.rollback()  # the checking pass wrote nothing; end its read transaction
    if not apply or not outcome.ok:
        return outcome
    _pass(db, text, today, Outcome(outcome.sha256), apply=True)
    append_audit(
        db,
        AuditLog(
            occurred_at=utcnow(),
            operator_id=operator_id,
            username=username,
            action="people.import",
            target_type="person",
            target_id=None,
            after={
                "file": filename,
                "sha256": outcome.sha256,
                "rows": outcome.rows,
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
            },
            remote_addr=remote_addr,
        ),
    )
    db.commit()
    outcome.applied = True
    return outcome


def export_people(db: Session, locale: str) -> Iterator[str]:
    """Every staff member in the import's format (UTF-8 with BOM), in id batches."""
    buf = io.StringIO()
    w = SafeCsvWriter(buf)  # formula escaping for every cell (domain.csvsafe)
    w.writerow(header_line(locale))
    yield "\ufeff" + buf.getvalue()
    last = 0
    assert [c[0] for c in COLUMNS][-1] == "card_ids"
    while True:
        people = db.execute(
            select(
                Person.id,
                Person.employee_no,
                Person.name,
                Person.name_kana,
                Person.organization,
                Person.designated,
            )
            .where(Person.kind == PersonKind.STAFF, Person.id > last)
            .order_by(Person.id)
            .limit(BATCH)
        ).all()
        if not people:
            return
        ids = [p.id for p in people]
        trained = dict(
            db.execute(
                select(Training.person_id, func.max(Training.completed_on))
                .where(Training.person_id.in_(ids))
                .group_by(Training.person_id)
            ).all()
        )
        cards: dict[int, list[tuple[str, str]]] = {}
        for pid, tech, card_id in db.execute(
            select(Credential.person_id, Credential.technology, Credential.card_id)
            .where(Credential.person_id.in_(ids), Credential.temporary.is_(False))
            .order_by(Credential.id)
        ):
            if pid is not None:
                cards.setdefault(pid, []).append((tech, card_id))
        buf.seek(0)
        buf.truncate()
        for p in people:
            t = trained.get(p.id)
            w.writerow(
                (
                    p.employee_no or "",
                    p.name,
                    p.name_kana or "",
                    p.organization or "",
                    "1" if p.designated else "0",
                    t.isoformat() if isinstance(t, date) else (t or ""),
                    format_cards(cards.get(p.id, [])),
                )
            )
        yield buf.getvalue()
        last = people[-1].id
