"""Issue 12, defect 3: no CSV the console or the CLI writes lets a spreadsheet run a formula.

A failed login with the user name ``=cmd|' /C calc'!A0`` used to reach the auditor's audit
export as a live formula. Every CSV writer now goes through ``domain.csvsafe``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from db.models import Event, Person
from db.types import utcnow
from tests.web.conftest import Auth, Site

EVIL_NAME = "=cmd|' /C calc'!A0"
STARTS = ("=", "+", "-", "@", "\t", "\r")
ROOT = Path(__file__).resolve().parents[2]


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row]


def _assert_inert(text: str) -> None:
    live = [c for c in _cells(text) if c.startswith(STARTS)]
    assert live == [], f"cells a spreadsheet would evaluate: {live}"


@pytest.mark.parametrize(
    "value", [EVIL_NAME, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(x)"]
)
def test_csv_cell_neutralises_formula_starts(value: str) -> None:
    from domain.csvsafe import csv_cell

    assert csv_cell(value) == "'" + value
    assert csv_cell("山田 太郎") == "山田 太郎" and csv_cell(None) == "" and csv_cell(12) == "12"


def test_audit_export_escapes_a_hostile_user_name(app: Flask, site: Site, auth: Auth) -> None:
    assert auth.login(EVIL_NAME, "whatever password").status_code == 401
    auditor = Auth(app.test_client())
    auditor.login("auditor")
    text = auditor.client.get("/audit/export.csv").get_data().decode("utf-8")
    assert "'" + EVIL_NAME in _cells(text)
    _assert_inert(text)


def test_event_and_monthly_exports_escape_hostile_names(
    app: Flask, site: Site, auth: Auth, session_factory: sessionmaker[Session]
) -> None:
    from db.eventlog import append_event

    now = utcnow()
    with session_factory() as s:
        p = Person(name="@evil", kind="visitor", organization="-org")
        s.add(p)
        s.flush()
        append_event(
            s,
            Event(
                occurred_at=now,
                kind="presentation",
                door_id=site.sr_door,
                area_id=site.server_room,
                reader="sr-in",
                direction="in",
                person_id=p.id,
                decision="denied",
                reason="no_escort",
                purpose="=1+2",
                visitor=True,
            ),
        )
        s.commit()
    auth.login("manager")
    events = auth.client.get("/events/export.csv").get_data().decode("utf-8")
    assert "'@evil" in _cells(events) and "'=1+2" in _cells(events)
    _assert_inert(events)
    month = now.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    monthly = auth.client.get(f"/reports/monthly.csv?month={month}").get_data().decode("utf-8")
    _assert_inert(monthly)


def test_every_csv_writer_uses_the_one_helper() -> None:
    """A new CSV writer that bypasses domain.csvsafe would bring the defect back."""
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench") or rel.as_posix() == "domain/csvsafe.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bcsv\.(writer|DictWriter)\(", text):
            offenders.append(rel.as_posix())
    assert offenders == []


def test_batch_writer_escapes_every_kind_of_cell() -> None:
    """writerows checks a column at a time: a hostile cell deep in a clean column, a cell
    holding a newline before ``=`` (not a formula start), bools, floats, enum members and
    ragged rows must all come out as ``csv_cell`` makes them one by one."""
    from enum import StrEnum

    from domain.csvsafe import SafeCsvWriter, csv_cell

    class Code(StrEnum):
        BAD = "=bad"

    rows: list[tuple[object, ...]] = [(i, f"name {i}", None, "ok") for i in range(500)]
    rows[321] = (321, "\t=1", None, "ok")
    rows[17] = (17, "line\n=not a start", 1.5, True)
    rows[400] = (-4, "-3", Code.BAD, "")
    ragged: list[list[object]] = [["a"], ["+b", 2, "@c"]]
    for batch in (rows, ragged):
        buf = io.StringIO()
        SafeCsvWriter(buf).writerows(batch)
        got = list(csv.reader(io.StringIO(buf.getvalue())))
        assert got == [[csv_cell(v) for v in row] for row in batch]
    _assert_inert(buf.getvalue())
