"""Property: any single edit, deletion, swap or insertion made in the database is detected."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.checkpoints import create_checkpoints, generate_key, load_key, trusted_keys
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.verify import verify_log
from tests.evidence.helpers import add_events

N = 12
EDITS = {
    "reason": "UPDATE events SET reason = reason || 'x' WHERE seq = :s",
    "card": "UPDATE events SET raw_card_id = 'FFFF' WHERE seq = :s",
    "time": "UPDATE events SET occurred_at = '2030-01-01 00:00:00.000000' WHERE seq = :s",
    "detail": "UPDATE events SET detail = '{\"n\": -1}' WHERE seq = :s",
    "visitor": "UPDATE events SET visitor = 1 - visitor WHERE seq = :s",
    "hash": "UPDATE events SET hash = 'ab' || substr(hash, 3) WHERE seq = :s",
    "prev": "UPDATE events SET prev_hash = 'ab' || substr(prev_hash, 3) WHERE seq = :s",
    "delete": "DELETE FROM events WHERE seq = :s",
}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("golden")
    db = d / "golden.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    eng = make_engine(url)
    factory = make_session_factory(eng)
    add_events(factory, N)
    key = d / "checkpoint.key"
    generate_key(key)
    with factory() as s:
        create_checkpoints(s, load_key(key), zone=ZoneInfo("Asia/Tokyo"))
        s.commit()
    eng.dispose()
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, key


def _verify(db: Path, key: Path) -> bool:
    eng = make_engine(f"sqlite:///{db}")
    with make_session_factory(eng)() as s:
        ok = verify_log(s, "events", trusted_keys(key)).ok
    eng.dispose()
    return ok


tamper = st.one_of(
    st.tuples(st.sampled_from(sorted(EDITS)), st.integers(1, N)),
    st.tuples(st.just("swap"), st.tuples(st.integers(1, N), st.integers(1, N)).filter(
        lambda p: p[0] != p[1])),
    st.tuples(st.just("insert"), st.integers(1, N + 1)),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(op=tamper)
def test_any_single_tampering_is_detected(golden, tmp_path_factory, op) -> None:  # type: ignore[no-untyped-def]
    src, key = golden
    db = tmp_path_factory.mktemp("t") / "x.db"
    shutil.copy(src, db)
    assert _verify(db, key)
    kind, arg = op
    with sqlite3.connect(db) as c:
        if kind == "swap":
            a, b = arg
            c.execute("UPDATE events SET seq = -1 WHERE seq = ?", (a,))
            c.execute("UPDATE events SET seq = ? WHERE seq = ?", (a, b))
            c.execute("UPDATE events SET seq = ? WHERE seq = -1", (b,))
        elif kind == "insert":  # copy a neighbour's content into a new row at position arg
            for s in range(N, arg - 1, -1):
                c.execute("UPDATE events SET seq = ? WHERE seq = ?", (s + 1, s))
            src_seq = arg + 1 if arg <= N else N
            c.execute(
                "INSERT INTO events (seq, prev_hash, hash, occurred_at, kind, decision, reason,"
                " visitor) SELECT ?, prev_hash, hash, occurred_at, kind, decision, reason,"
                " visitor FROM events WHERE seq = ?",
                (arg, src_seq),
            )
        else:
            c.execute(EDITS[kind].replace(":s", "?"), (arg,))
    assert not _verify(db, key), op
