"""Every event-log filter is served by an index: no plan reads the whole events table.

The queries are the ones the page runs (web.eventquery), captured as executed and handed to
SQLite's ``EXPLAIN QUERY PLAN`` and PostgreSQL's ``EXPLAIN`` (with sequential scans priced
out, so a ``Seq Scan on events`` in the plan means no index could serve the filter). On
SQLite a filter must *search* events through an index that starts with its own column (or
the time index for a time range); only the unfiltered newest-first page walks the time
index from its end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from db.engine import make_engine
from db.migrate import upgrade
from db.models import Area, Door, Person
from tests.web.conftest import price_out
from web import eventquery
from web.eventquery import EventFilter

T = datetime(2026, 4, 1, tzinfo=UTC)
CURSOR = f"{int(T.timestamp() * 1_000_000)}_99"

# filter -> the index the SQLite plan must search events with
FILTERS: list[tuple[str, dict[str, Any], str]] = [
    ("range", {"since": T, "until": T.replace(day=2)}, "ix_events_occurred_id"),
    ("area", {"area_id": 1}, "ix_events_area_occurred"),
    ("door", {"door_id": 1}, "ix_events_door_occurred"),
    ("person id", {"person": "#1"}, "ix_events_person_occurred"),
    ("person name", {"person": "田中 一"}, "ix_events_person_occurred"),
    ("person name start", {"person": "田中"}, "ix_events_person_occurred"),
    ("decision", {"decision": "denied"}, "ix_events_decision_occurred"),
    ("reason", {"reason": "antipassback"}, "ix_events_reason_occurred"),
    ("visitors", {"visitors_only": True}, "ix_events_visitor_occurred"),
    ("alarms", {"alarms_only": True}, "INTEGER PRIMARY KEY"),
    ("area+reason", {"area_id": 1, "reason": "granted"}, "ix_events_"),
    ("visitors+area+day", {"visitors_only": True, "area_id": 1, "since": T}, "ix_events_"),
    ("reason+day", {"reason": "granted", "since": T, "until": T.replace(day=2)}, "ix_events_"),
    ("person+area", {"person": "#1", "area_id": 2}, "ix_events_"),
]


def _seed(session: Session) -> None:
    session.add(Area(code="a", name="A"))
    session.flush()
    session.add(Door(code="d", name="D", area_id=1))
    session.add_all([Person(name="田中 一郎"), Person(name="田中 次郎"), Person(name="佐藤 三郎")])
    session.commit()


def _plans(engine: Engine, f: EventFilter, explain: str) -> Iterator[str]:
    """The plan of each query the page runs for ``f`` (first page, older, newer pages)."""
    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "FROM events" in statement:
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with Session(engine) as s:
            eventquery.page(s, f)
            eventquery.page(s, f, after=CURSOR)
            eventquery.page(s, f, before=CURSOR)
            list(eventquery.csv_stream(s, f, "ja", UTC))
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert captured
    with engine.connect() as conn:
        for statement, params in captured:
            rows = conn.exec_driver_sql(explain + statement, params).all()
            yield "\n".join(" ".join(str(c) for c in r) for r in rows)


@pytest.fixture
def sqlite_engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        _seed(s)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(("name", "kw", "index"), FILTERS, ids=[f[0] for f in FILTERS])
def test_sqlite_plans_search_an_index(
    sqlite_engine: Engine, name: str, kw: dict[str, Any], index: str
) -> None:
    for plan in _plans(sqlite_engine, EventFilter(**kw), "EXPLAIN QUERY PLAN "):
        events_lines = [ln for ln in plan.splitlines() if re.search(r"\bevents\b", ln)]
        assert events_lines, plan
        for ln in events_lines:
            assert "SCAN events" not in ln or "ix_events_occurred_id" in ln and "range" in name, (
                f"{name}: {plan}"
            )
        assert any("SEARCH events" in ln and index in ln for ln in events_lines), f"{name}: {plan}"


def test_sqlite_unfiltered_page_walks_the_time_index(sqlite_engine: Engine) -> None:
    for plan in _plans(sqlite_engine, EventFilter(), "EXPLAIN QUERY PLAN "):
        assert "ix_events_occurred_id" in plan, plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize(("name", "kw", "index"), FILTERS, ids=[f[0] for f in FILTERS])
def test_postgresql_plans_use_an_index(
    pg_url: str, name: str, kw: dict[str, Any], index: str
) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    price_out(engine, "enable_seqscan")
    try:
        with Session(engine) as s:
            _seed(s)
        for plan in _plans(engine, EventFilter(**kw), "EXPLAIN "):
            assert "Seq Scan on events" not in plan, f"{name}: {plan}"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_export_in_small_batches_has_every_row(pg_url: str) -> None:
    """The export reads one server-side cursor in batches: the first row (which the result
    buffers to learn the columns) and the last partial batch are both written."""
    from db.eventlog import append_event
    from db.models import Event

    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        with Session(engine) as s:
            _seed(s)
            for i in range(10):
                append_event(
                    s,
                    Event(
                        occurred_at=T.replace(hour=i),
                        kind="presentation",
                        decision="granted",
                        reason="granted",
                        raw_card_id=f"card-{i}",
                    ),
                )
            s.commit()
        with Session(engine) as s:
            small = "".join(eventquery.csv_stream(s, EventFilter(), "en", UTC, batch=3))
            whole = "".join(eventquery.csv_stream(s, EventFilter(), "en", UTC, batch=1000))
        assert small == whole
        assert [f"card-{i}" in small for i in range(10)] == [True] * 10
        assert small.count("\r\n") == 11  # the header and every row
    finally:
        engine.dispose()
