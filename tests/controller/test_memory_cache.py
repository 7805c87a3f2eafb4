"""The controller keeps its memory in a local file between runs, and uses it only when sound.

A restart reads the file instead of every cardholder and still applies the changes made
while it was down; a damaged file, one of another database, or one older than the kept
change feed is refused (with a log line naming why) and rebuilt. The change feed is pruned
to a window; a controller behind the window reads everything again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from controller import memory_cache
from controller.daemon import Controller
from controller.feed import ChangeFeed
from controller.memory import load_snapshot
from db import changes
from db.commands import CommandKind, enqueue
from db.engine import make_engine, make_session_factory, session_scope
from db.models import (
    Change,
    Command,
    CommandState,
    Credential,
    CredentialState,
    Person,
    SiteSetting,
    Training,
)
from db.types import utcnow
from hardware.sim import SimBackend
from nyutai.demo import DEMO_CARDS
from tests.controller.conftest import Site
from tests.controller.test_memory import TOKYO, _same

CACHED = "from the local cache"
READ = "read from the database"


def _restart(site: Site) -> Site:
    """Stop the site's controller and start a new one on the same data folder."""
    site.ctl.stop()
    backend = SimBackend()
    ctl = Controller(site.cfg, session_factory=site.sessions, backend=backend)
    ctl.start()
    return Site(site.cfg, ctl, backend, site.sessions, site.pin)


def _written(site: Site) -> Path:
    writer = site.ctl.cache_writer
    assert writer is not None
    assert writer.saved.wait(30), "the memory cache was not written after the full load"
    return site.cfg.data_path(memory_cache.FILENAME)


def _card(s: Session, who: str) -> Credential:
    cred = s.scalar(select(Credential).where(Credential.card_id == DEMO_CARDS[who][1]))
    assert cred is not None
    return cred


def test_a_restart_uses_the_cache_and_sees_a_change_made_while_it_was_down(
    site_factory: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    site = site_factory()
    path = _written(site)
    assert path.stat().st_mode & 0o777 == 0o600  # it holds PIN hashes, as the database does
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    site.ctl.stop()
    with session_scope(site.sessions) as s:  # while the controller is down
        _card(s, "yamada").state = CredentialState.LOST
    caplog.clear()
    site = _restart(site)
    try:
        assert CACHED in caplog.text and READ not in caplog.text
        assert site.tap("sr-in", "yamada")["reason"] == "credential_lost"
    finally:
        site.ctl.stop()


def test_a_corrupt_cache_is_refused_logged_and_rebuilt(
    site_factory: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    site = site_factory()
    path = _written(site)
    site.ctl.stop()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the arrays: the zip still opens, a checksum differs
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with session_scope(site.sessions) as s:
        _card(s, "yamada").state = CredentialState.LOST
    caplog.set_level(logging.INFO)
    site = _restart(site)
    try:
        assert "memory_cache_corrupt" in caplog.text
        assert READ in caplog.text and CACHED not in caplog.text
        assert site.tap("sr-in", "yamada")["reason"] == "credential_lost"
        _written(site)  # rebuilt from the database
        base, version, _ = memory_cache.read(path)
        assert len(base.cred_id) > 0 and version == site.ctl.facts.version  # type: ignore[union-attr]
    finally:
        site.ctl.stop()


def test_a_truncated_file_is_refused(tmp_path: Path, site_factory: Callable[..., Site]) -> None:
    site = site_factory()
    path = _written(site)
    site.ctl.stop()
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(memory_cache.CacheRejected) as info:
        memory_cache.read(path)
    assert info.value.code == "memory_cache_corrupt"


def test_a_cache_of_another_database_is_refused(
    site_factory: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    site = site_factory()
    _written(site)
    site.ctl.stop()
    with session_scope(site.sessions) as s:  # as if the data folder now pointed elsewhere
        s.execute(
            update(SiteSetting)
            .where(SiteSetting.key == memory_cache.IDENTITY_KEY)
            .values(value="another")
        )
    caplog.set_level(logging.INFO)
    site = _restart(site)
    try:
        assert "memory_cache_foreign" in caplog.text and READ in caplog.text
    finally:
        site.ctl.stop()


def test_the_merged_cache_gives_the_facts_the_database_gives(
    site_factory: Callable[..., Site],
) -> None:
    """compact() merges the changes into new arrays: what they say equals a full read."""
    site = site_factory()
    _written(site)
    with session_scope(site.sessions) as s:
        yamada = _card(s, "yamada")
        yamada.card_id = "00AA00AA00AA00AA"  # a replacement card
        _card(s, "sato").state = CredentialState.LOST  # retired, never deleted (db.kept)
        person = s.get(Person, yamada.person_id)
        assert person is not None
        person.designated = False
        s.add(Training(person_id=person.id, course="再研修", completed_on=utcnow().date()))
        newcomer = Person(kind="staff", name="新人", designated=True, active=True)
        s.add(newcomer)
        s.flush()
        s.add(Credential(person_id=newcomer.id, technology="felica", card_id="0102030405060708"))
    site.ctl.catch_up()
    snap = site.ctl.facts
    assert snap is not None and snap.overlay.creds
    writer = site.ctl.cache_writer
    assert writer is not None and writer.write_now()
    site.ctl.stop()
    base, version, _ = memory_cache.read(site.cfg.data_path(memory_cache.FILENAME))
    assert version == snap.version
    with site.sessions() as s:
        merged = load_snapshot(s, TOKYO, (base, version))
        assert not merged.overlay.creds
        for card in (
            "00AA00AA00AA00AA",
            "0102030405060708",
            DEMO_CARDS["yamada"][1],
            DEMO_CARDS["sato"][1],
            DEMO_CARDS["suzuki"][1],
        ):
            _same(s, merged, card)


def test_pruning_keeps_the_window_and_the_newest_change(
    session_factory: sessionmaker[Session], site_factory: Callable[..., Site]
) -> None:
    site = site_factory()
    site.ctl.stop()
    with session_scope(session_factory) as s:
        newest = s.scalar(select(func.max(Change.version)))
        count = s.scalar(select(func.count()).select_from(Change))
        assert newest is not None and count is not None and count > 2
        # everything old but the newest: the newest stays (SQLite must not reuse its number)
        assert changes.prune(s, utcnow() + timedelta(days=1)) == count - 1
    with session_scope(session_factory) as s:
        assert list(s.scalars(select(Change.version))) == [newest]
        assert changes.prune(s, utcnow() - timedelta(days=changes.KEEP_DAYS)) == 0


def test_a_cache_older_than_the_pruned_feed_is_refused(
    session_factory: sessionmaker[Session],
    site_factory: Callable[..., Site],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = site_factory()
    _written(site)
    site.ctl.stop()
    with session_scope(session_factory) as s:  # changes while down, then pruned away
        _card(s, "yamada").state = CredentialState.LOST
        _card(s, "sato").state = CredentialState.LOST
    with session_scope(session_factory) as s:
        changes.prune(s, utcnow() + timedelta(days=1))
    caplog.set_level(logging.INFO)
    site = _restart(site)
    try:
        assert "memory_cache_too_old" in caplog.text and READ in caplog.text
        assert site.tap("sr-in", "yamada")["reason"] == "credential_lost"
    finally:
        site.ctl.stop()


def test_a_running_feed_behind_the_pruned_window_reads_everything_again(
    session_factory: sessionmaker[Session],
    site_factory: Callable[..., Site],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = site_factory()
    site.ctl.stop()
    with session_factory() as s:
        box = [load_snapshot(s, TOKYO)]
    feed = ChangeFeed(session_factory, lambda: box[0], lambda snap: box.__setitem__(0, snap))
    with session_scope(session_factory) as s:  # two changes the feed never saw, pruned
        _card(s, "yamada").state = CredentialState.LOST
    with session_scope(session_factory) as s:
        _card(s, "sato").state = CredentialState.LOST
    with session_scope(session_factory) as s:
        changes.prune(s, utcnow() + timedelta(days=1))
    caplog.set_level(logging.WARNING)
    assert feed.step() > 0
    assert "memory_too_old" in caplog.text
    with session_factory() as s:
        for who in ("yamada", "sato"):
            _same(s, box[0], DEMO_CARDS[who][1])
    assert box[0].card("felica", DEMO_CARDS["yamada"][1], 1).credential.state == "lost"  # type: ignore[union-attr]


def test_the_command_poller_logs_an_outage_once_and_its_end_once(
    site: Site, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.engine import make_url

    path = make_url(site.cfg.database_url).database
    if site.cfg.database_url.startswith("postgresql") or not path:
        pytest.skip("an exclusive lock on the SQLite file")
    runner = site.ctl.commands
    runner.stop()  # polled by hand below, not by its thread
    # its polls wait out a short busy timeout, not the default 10 s each
    engine = make_engine(site.cfg.database_url, busy_timeout_ms=200)
    monkeypatch.setattr(site.ctl, "sessions", make_session_factory(engine))
    with session_scope(site.sessions) as s:  # a timed-out tap: the poll must write to expire it
        enqueue(
            s,
            CommandKind.TAP,
            {"reader": "sr-in", "card": DEMO_CARDS["yamada"][1]},
            expires_in=1,
            now=utcnow() - timedelta(minutes=1),
        )
    blocker = sqlite3.connect(path, isolation_level=None)
    caplog.set_level(logging.INFO, logger="controller.commands")
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        for _ in range(3):
            runner.poll_once()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    runner.poll_once()
    runner.poll_once()
    lines = [r for r in caplog.records if r.name == "controller.commands"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert "database_unavailable" in lines[0].getMessage()
    assert "database_restored" in lines[1].getMessage()
    assert all(r.exc_info is None for r in lines)  # one line each, no traceback
    with session_scope(site.sessions) as s:  # and the command was expired once it was back
        states = list(s.scalars(select(Command.state)))
    assert states == [CommandState.FAILED]
