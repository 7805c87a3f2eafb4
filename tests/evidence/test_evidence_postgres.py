"""The chain on PostgreSQL: advisory-lock appends from threads and processes, hashing as stored.

Needs a server: NYUTAI_TEST_PG_URL=postgresql+psycopg://user@127.0.0.1:PORT/postgres
(the test creates and drops its own database there).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from db.engine import make_engine, make_session_factory
from db.eventlog import append_audit, append_event
from db.migrate import upgrade
from db.models import AuditLog, Event
from db.verify import ALTERED, REORDERED, verify_all, verify_log

pytestmark = pytest.mark.postgres
PG_URL = os.environ.get("NYUTAI_TEST_PG_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("NYUTAI_TEST_PG_URL is not set")
    name = f"nyutai_ev_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _append_many(url: str, n: int, tag: str) -> None:
    eng = make_engine(url)
    factory = make_session_factory(eng)
    for i in range(n):
        with factory() as s:
            append_audit(s, AuditLog(occurred_at=datetime.now(UTC), action=f"{tag}.{i}"))
            s.commit()
    eng.dispose()


def test_concurrent_appends_keep_one_chain(pg_url: str) -> None:
    threads = [threading.Thread(target=_append_many, args=(pg_url, 20, f"t{i}")) for i in range(3)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(pg_url, 20, f"p{i}")) for i in range(2)]
    for w in [*threads, *procs]:
        w.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    eng = make_engine(pg_url)
    with make_session_factory(eng)() as s:
        assert s.scalars(select(AuditLog.seq).order_by(AuditLog.seq)).all() == list(range(1, 101))
        assert verify_log(s, "audit", None).ok
    eng.dispose()


def test_values_hash_as_stored_and_edits_are_found(pg_url: str) -> None:
    eng = make_engine(pg_url)
    factory = make_session_factory(eng)
    with factory() as s:
        for i in range(5):
            append_event(
                s,
                Event(
                    occurred_at=datetime(
                        2026, 3, 1, 9, 0, i, 123456, tzinfo=ZoneInfo("Asia/Tokyo")
                    ),
                    kind="presentation",
                    decision="granted",
                    reason="granted",
                    detail={"b": [1, 2.5, None], "a": "日本語", 3: True},
                ),
            )
        s.commit()
        assert verify_all(s, None).ok
    with eng.begin() as c:
        c.execute(text('UPDATE events SET detail = \'{"a": "x"}\' WHERE seq = 2'))
    with factory() as s:
        f = verify_log(s, "events", None).first
        assert f is not None and (f.kind, f.seq) == (ALTERED, 2)
    with eng.begin() as c:  # swap rows 4 and 5 (the walk looks rows up while it streams)
        for a, b in ((4, -1), (5, 4), (-1, 5)):
            c.execute(text("UPDATE events SET seq = :b WHERE seq = :a"), {"a": a, "b": b})
    with factory() as s:
        kinds = [(f.kind, f.seq) for f in verify_log(s, "events", None).findings]
        assert (REORDERED, 4) in kinds
    eng.dispose()
