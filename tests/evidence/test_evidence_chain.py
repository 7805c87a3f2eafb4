"""Tamper detection: rows edited, deleted, swapped and inserted straight in the database."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from db.chain import GENESIS, canonical_event, chain_hash
from db.checkpoints import create_checkpoints, generate_key, load_key, trusted_keys
from db.engine import make_engine, make_session_factory
from db.eventlog import append_audit, append_event
from db.models import AuditLog, Checkpoint, Decision, Event
from db.verify import ALTERED, BAD_CHECKPOINT, DELETED, INSERTED, REORDERED, verify_all, verify_log
from tests.evidence.helpers import T0, add_audits, add_events

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    p = tmp_path / "keys" / "checkpoint.key"
    generate_key(p)
    return p


def first(factory: sessionmaker[Session], log: str = "events", keys: set[str] | None = None):
    with factory() as s:
        return verify_log(s, log, keys).first


def sql(engine: Engine, *stmts: str) -> None:
    with engine.begin() as c:
        for st in stmts:
            c.execute(text(st))


def test_intact_chain_verifies(session_factory, key_path) -> None:
    add_events(session_factory, 20)
    add_audits(session_factory, 5)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO)
        s.commit()
        res = verify_all(s, trusted_keys(key_path))
    assert res.ok, res.first
    assert [r.rows_checked for r in res.logs] == [20, 5]
    assert [r.checkpoints_checked for r in res.logs] == [1, 1]


def test_chain_links_and_genesis(session_factory) -> None:
    add_events(session_factory, 3)
    with session_factory() as s:
        rows = s.scalars(select(Event).order_by(Event.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    assert rows[1].prev_hash == rows[0].hash
    assert rows[1].hash == chain_hash(rows[0].hash or "", canonical_event(rows[1]))


def test_edited_row_is_named(session_factory, engine) -> None:
    add_events(session_factory, 10)
    sql(engine, "UPDATE events SET reason='granted', decision='granted' WHERE seq=4")
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (ALTERED, 4)


def test_edited_time_is_named(session_factory, engine) -> None:
    add_events(session_factory, 10)
    sql(engine, "UPDATE events SET occurred_at='2026-03-01 05:00:00.000000' WHERE seq=7")
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (ALTERED, 7)


def test_edit_with_recomputed_hash_is_named(session_factory) -> None:
    add_events(session_factory, 10)
    with session_factory() as s:  # a careful forger fixes the row's own hash
        row = s.scalars(select(Event).where(Event.seq == 5)).one()
        row.raw_card_id = "DEADBEEF"
        row.hash = chain_hash(row.prev_hash or "", canonical_event(row))
        s.commit()
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (ALTERED, 5)


def test_deleted_row_is_named(session_factory, engine) -> None:
    add_events(session_factory, 10)
    sql(engine, "DELETE FROM events WHERE seq=6")
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (DELETED, 6)


def test_deleted_tail_is_found_by_checkpoint(session_factory, engine, key_path) -> None:
    add_events(session_factory, 10)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO)
        s.commit()
    sql(engine, "DELETE FROM events WHERE seq >= 9")
    f = first(session_factory, keys=trusted_keys(key_path))
    assert f is not None and (f.kind, f.seq) == (DELETED, 9)


@pytest.mark.parametrize(("a", "b"), [(4, 5), (3, 8), (1, 10)])
def test_swapped_rows_are_named(session_factory, engine, a: int, b: int) -> None:
    add_events(session_factory, 10)
    sql(
        engine,
        f"UPDATE events SET seq=-1 WHERE seq={a}",
        f"UPDATE events SET seq={a} WHERE seq={b}",
        f"UPDATE events SET seq={b} WHERE seq=-1",
    )
    with session_factory() as s:
        found = [(f.kind, f.seq) for f in verify_log(s, "events", None).findings]
    assert found == [(REORDERED, a), (REORDERED, b)]


def _forge(session: Session, seq: int, prev_hash: str, rehash: bool) -> None:
    ev = Event(
        seq=seq,
        occurred_at=T0 + timedelta(minutes=4, seconds=30),
        kind="presentation",
        decision="granted",
        reason="granted",
        visitor=False,
        prev_hash=prev_hash,
    )
    ev.hash = chain_hash(prev_hash, canonical_event(ev)) if rehash else "f" * 64
    session.add(ev)
    session.commit()


@pytest.mark.parametrize("rehash", [True, False])
def test_inserted_row_is_named(session_factory, engine, rehash: bool) -> None:
    add_events(session_factory, 10)
    # make room at seq 5 (descending, the seq column is unique), then forge a row there
    for s_ in range(10, 4, -1):
        sql(engine, f"UPDATE events SET seq={s_ + 1} WHERE seq={s_}")
    with session_factory() as s:
        prev = s.scalar(select(Event.hash).where(Event.seq == 4))
        _forge(s, 5, prev or "", rehash)
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (INSERTED, 5)


def test_row_written_outside_the_chain_is_named(session_factory, engine) -> None:
    add_events(session_factory, 3)
    sql(
        engine,
        "INSERT INTO events (occurred_at, kind, decision, reason, visitor) "
        "VALUES ('2026-03-01 00:01:30.000000', 'presentation', 'granted', 'granted', 0)",
    )
    f = first(session_factory)
    assert f is not None and f.kind == INSERTED and f.seq is None


def test_rewritten_chain_is_caught_by_checkpoint(session_factory, key_path) -> None:
    add_events(session_factory, 10)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO)
        s.commit()
        # rewrite rows 3.. with fresh hashes: the chain alone is consistent again
        rows = s.scalars(select(Event).where(Event.seq >= 3).order_by(Event.seq)).all()
        prev = s.scalar(select(Event.hash).where(Event.seq == 2)) or ""
        for r in rows:
            if r.seq == 3:
                r.raw_card_id = "FORGED"
            r.prev_hash = prev
            r.hash = chain_hash(prev, canonical_event(r))
            prev = r.hash
        s.commit()
    f = first(session_factory)
    assert f is not None and (f.kind, f.seq) == (ALTERED, 10)  # the checkpoint disagrees
    with session_factory() as s:  # the forger updates the checkpoint too, but cannot sign
        s.scalars(select(Checkpoint)).one().hash = prev
        s.commit()
    assert first(session_factory) is None  # without the trusted key the forgery is invisible
    f = first(session_factory, keys=trusted_keys(key_path))
    assert f is not None and f.kind == BAD_CHECKPOINT


def test_forged_checkpoint_is_refused(session_factory, key_path, tmp_path) -> None:
    add_events(session_factory, 5)
    other = tmp_path / "other.key"
    generate_key(other)
    with session_factory() as s:
        # signed by a key the auditor does not trust
        create_checkpoints(s, load_key(other), zone=TOKYO)
        s.commit()
    f = first(session_factory, keys=trusted_keys(key_path))
    assert f is not None and f.kind == BAD_CHECKPOINT


def test_checkpoint_signature_covers_its_hash(session_factory, engine, key_path) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO)
        s.commit()
    sql(engine, f"UPDATE checkpoints SET hash='{'a' * 64}'")
    f = first(session_factory, keys=trusted_keys(key_path))
    assert f is not None and f.kind == BAD_CHECKPOINT


def test_audit_log_edit_is_named(session_factory, engine) -> None:
    add_audits(session_factory, 6)
    sql(engine, 'UPDATE audit_log SET after=\'{"name": "x"}\' WHERE seq=2')
    f = first(session_factory, "audit")
    assert f is not None and (f.kind, f.seq) == (ALTERED, 2)


def test_verify_from_date_starts_at_checkpoint(session_factory, engine, key_path) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO, now=T0 + timedelta(days=1))
        s.commit()
    add_events(session_factory, 5, start=T0 + timedelta(days=2))
    sql(engine, "UPDATE events SET reason='x' WHERE seq=2")  # before the window
    with session_factory() as s:
        since = T0 + timedelta(days=1, hours=12)
        res = verify_log(s, "events", trusted_keys(key_path), since=since)
        assert res.ok and res.rows_checked == 5 and res.first_seq == 6
        assert not verify_log(s, "events", trusted_keys(key_path)).ok


def test_values_hash_as_stored(session_factory) -> None:
    """Defaults, StrEnums, ints for string columns and non-UTC times hash as the DB keeps them."""
    jst = ZoneInfo("Asia/Tokyo")
    with session_factory() as s:
        append_event(
            s,
            Event(
                occurred_at=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=jst),
                kind="presentation",
                decision=Decision.GRANTED,
                reason="granted",
                detail={1: ("a", "b")},
            ),
        )
        append_audit(
            s,
            AuditLog(occurred_at=datetime.now(UTC), action="x", target_id=42),  # type: ignore[arg-type]
        )
        s.commit()
    with session_factory() as s:
        assert verify_all(s, None).ok


def _append_many(url: str, n: int, tag: str) -> None:
    eng = make_engine(url)
    factory = make_session_factory(eng)
    for i in range(n):
        with factory() as s:
            append_audit(s, AuditLog(occurred_at=datetime.now(UTC), action=f"{tag}.{i}"))
            s.commit()
    eng.dispose()


def _check_contiguous(factory: sessionmaker[Session], total: int) -> None:
    with factory() as s:
        seqs = s.scalars(select(AuditLog.seq).order_by(AuditLog.seq)).all()
        assert seqs == list(range(1, total + 1))
        assert verify_log(s, "audit", None).ok


def test_concurrent_threads_keep_one_chain(db_url, session_factory) -> None:
    threads = [threading.Thread(target=_append_many, args=(db_url, 25, f"t{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_contiguous(session_factory, 100)


def test_concurrent_processes_keep_one_chain(db_url, session_factory) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(db_url, 25, f"p{i}")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    _check_contiguous(session_factory, 75)


def test_checkpoint_is_daily(session_factory, key_path) -> None:
    add_events(session_factory, 2)
    with session_factory() as s:
        key = load_key(key_path)
        assert len(create_checkpoints(s, key, zone=TOKYO, now=T0)) == 1
        assert create_checkpoints(s, key, zone=TOKYO, now=T0 + timedelta(hours=1)) == []
        assert len(create_checkpoints(s, key, zone=TOKYO, now=T0 + timedelta(days=1))) == 1
        assert s.scalar(select(Checkpoint.seq).limit(1)) == 2


def test_checkpoint_day_is_the_site_zone_day(session_factory, key_path) -> None:
    # T0 is 09:00 in Tokyo and 19:00 the day before in New York; six hours later it is
    # 15:00 the same day in Tokyo, but past midnight in New York: a new day there
    add_events(session_factory, 2)
    later = T0 + timedelta(hours=6)
    with session_factory() as s:
        key = load_key(key_path)
        assert len(create_checkpoints(s, key, zone=TOKYO, now=T0)) == 1
        assert create_checkpoints(s, key, zone=TOKYO, now=later) == []
        new_york = ZoneInfo("America/New_York")
        assert len(create_checkpoints(s, key, zone=new_york, now=later)) == 1


def test_key_file_is_private(key_path) -> None:
    assert key_path.stat().st_mode & 0o077 == 0
