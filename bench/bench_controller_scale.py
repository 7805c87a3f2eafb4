"""The controller at scale (issue 10): each figure beside a raw-SQLite baseline of the same run.

    python -m bench.bench_controller_scale --db /tmp/scale/nyutai.db --site /tmp/scale/site.toml \
        --work /tmp/ctlbench [--capacity 2000000,10000000] [--taps 1000] [--burst 3000]

``--db`` is a database made by bench/scale_data.py (it is COPIED to ``--work`` first, with
SQLite's backup API: the original is never written). Figures:

- start-up time and RSS of the controller's memory at each ``--capacity`` (people-only
  databases built in ``--work``), read from the database and then from the controller's
  local cache (controller.memory_cache, after a change made while "down"), each beside a
  raw scan of the credentials table;
- sequential taps p50/p99 (presentation -> row committed -> reader feedback), beside raw
  ``INSERT`` + ``COMMIT`` per row with synchronous=FULL (into a bare table, as the issue
  defines it, and an event row into the events table with its indexes);
- ``--burst`` presentations over 64 doors at once: rate, queue-to-commit p99 (a decided
  work handed to the recorder until its commit returned) and presentation-to-feedback p50/p99
  (which includes the wait in the controller's queue behind the burst), beside a raw group
  commit of 100 rows per transaction;
- other doors' p99 while one door takes card + (wrong) PIN every 30 taps;
- 256 reader online/offline changes;
- revocation (card reported lost) to the door;
- taps while another connection holds the database's exclusive lock.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.scale_data import card_id, reader_ids


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def copy_db(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    source.backup(target)
    target.execute("PRAGMA journal_mode=WAL")
    source.close()
    target.close()


def bring_up_to_date(url: str) -> None:
    """A database made by an older scale_data may lack this branch's feed table and column."""
    from db.engine import make_engine
    from db.models import Change

    engine = make_engine(url)
    with engine.begin() as conn:
        Change.__table__.create(conn, checkfirst=True)
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(areas)")]
        if "offline" not in cols:
            conn.exec_driver_sql(
                "ALTER TABLE areas ADD COLUMN offline VARCHAR(16) NOT NULL DEFAULT 'cached'"
            )
    engine.dispose()


# --- raw SQLite baselines ---------------------------------------------------------------

RAW_GROUP_CPU_MS = float("nan")  # CPU per row of the raw group commit (a loaded machine
# stretches wall-clock rates; CPU time per row is what the process itself spends)


def raw_commit_per_row(path: Path, n: int) -> list[float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, payload TEXT)")
    lat = []
    for i in range(n):
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO bench_raw (payload) VALUES (?)", (f"row {i} " + "x" * 300,))
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t)
    conn.execute("DROP TABLE bench_raw")
    conn.close()
    return lat


def raw_event_commit_per_row(
    path: Path, n: int, people: int, *, auto_checkpoint: bool = True
) -> list[float]:
    """The same as raw_commit_per_row, but each row is an event row (random person) in the
    events table itself, with its indexes and foreign keys: what the schema alone costs.
    ``auto_checkpoint=False``: SQLite's own checkpoint off, as on the controller's writer
    (db.wal), the WAL copied afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    if not auto_checkpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    cur = conn.execute("SELECT * FROM events WHERE person_id IS NOT NULL ORDER BY id DESC LIMIT 1")
    names = [d[0] for d in cur.description]
    template = dict(zip(names, cur.fetchone(), strict=True))
    top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    sql = f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    rng = random.Random(3)
    lat = []
    for i in range(n):
        row = {**template, "id": top + 1 + i, "controller": "bench-raw", "seq": i + 1}
        row["person_id"] = rng.randint(1, people)
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(sql, [row[k] for k in names])
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t)
    conn.execute("DELETE FROM events WHERE controller = 'bench-raw'")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return lat


def raw_group_commit(path: Path, n: int, group: int = 100) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, payload TEXT)")
    global RAW_GROUP_CPU_MS
    cpu = time.process_time()
    t = time.perf_counter()
    for start in range(0, n, group):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO bench_raw (payload) VALUES (?)",
            [(f"row {i} " + "x" * 300,) for i in range(start, start + group)],
        )
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - t)
    RAW_GROUP_CPU_MS = (time.process_time() - cpu) * 1000 / n
    conn.execute("DROP TABLE bench_raw")
    conn.close()
    return rate


# --- capacity: start-up and RSS at 2M / 10M cardholders ---------------------------------


def build_people_only(path: Path, n: int) -> str:
    """people + one FeliCa card each + a training + an authorization (enough for decide)."""
    from db.migrate import upgrade
    from domain.search import search_key

    url = f"sqlite:///{path}"
    if path.exists():
        return url
    upgrade(url)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(
        "INSERT INTO areas (id, code, name, permitted_devices, antipassback, escort_policy, "
        "visitor_exit_needs_escort, max_visitors_per_escort, two_person_rule, offline, "
        "created_at) VALUES (1, 'a', 'a', '[]', 'off', 'any', 1, 3, 0, 'cached', "
        "'2025-01-01 00:00:00')"
    )
    created = "2025-01-01 00:00:00.000000"
    step = 500_000
    for lo in range(1, n + 1, step):
        hi = min(n, lo + step - 1)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO people (id, kind, name, search_key, designated, active, created_at) "
            "VALUES (?, 'staff', ?, ?, 1, 1, ?)",
            (
                (i, f"person {i}", search_key(f"person {i}", None), created)
                for i in range(lo, hi + 1)
            ),  # fmt: skip
        )
        conn.executemany(
            "INSERT INTO credentials (id, person_id, technology, card_id, temporary, state, "
            "failed_pin_count, created_at) VALUES (?, ?, 'felica', ?, 0, 'active', 0, ?)",
            ((i, i, card_id(i), created) for i in range(lo, hi + 1)),
        )
        conn.executemany(
            "INSERT INTO trainings (id, person_id, course, completed_on, created_at) "
            "VALUES (?, ?, 'annual', '2026-06-01', ?)",
            ((i, i, created) for i in range(lo, hi + 1)),
        )
        conn.executemany(
            "INSERT INTO authorizations (id, person_id, area_id, state, created_at) "
            "VALUES (?, ?, 1, 'approved', ?)",
            ((i, i, created) for i in range(lo, hi + 1)),
        )
        conn.execute("COMMIT")
    conn.close()
    return url


def load_only(url: str, cache: str) -> None:
    """(subprocess) load the controller's memory from the database; print seconds and RSS;
    then write it to ``cache`` as the controller's cache writer does (not timed as start)."""
    from controller import memory_cache
    from controller.memory import load_snapshot
    from db.engine import make_engine, make_session_factory

    before = rss_mib()
    factory = make_session_factory(make_engine(url))
    with factory.begin() as s:
        identity = memory_cache.ensure_identity(s)
    t = time.perf_counter()
    with factory() as s:
        snap = load_snapshot(s, ZoneInfo("Asia/Tokyo"))
    took = time.perf_counter() - t
    probe = snap.card("felica", card_id(len(snap.base.cred_id) // 2), 1)
    assert probe.person is not None
    rss = rss_mib()
    t = time.perf_counter()
    memory_cache.save(Path(cache), memory_cache.compact(snap), snap.version, identity)
    wrote = time.perf_counter() - t
    print(f"{took:.2f} {rss:.0f} {before:.0f} {len(snap.base.cred_id)} {wrote:.2f}")


def load_cached(url: str, cache: str) -> None:
    """(subprocess) the start-up path with the local cache, as Controller.start runs it: a
    card is reported lost while "down" first, and must be lost in memory after the start."""
    from sqlalchemy import update

    from controller import memory_cache
    from controller.feed import ChangeFeed
    from controller.memory import load_snapshot
    from db.engine import make_engine, make_session_factory
    from db.models import Credential, CredentialState

    before = rss_mib()
    factory = make_session_factory(make_engine(url))
    victim = card_id(7)
    with factory.begin() as s:  # an ORM bulk update: recorded in the change feed
        s.execute(
            update(Credential)
            .where(Credential.card_id == victim)
            .values(state=CredentialState.LOST)
        )
    t = time.perf_counter()
    with factory.begin() as s:
        identity = memory_cache.ensure_identity(s)
    with factory() as s:
        cached = memory_cache.load(Path(cache), identity, memory_cache.feed_range(s))
        assert cached is not None, "the cache was refused"
        box = [load_snapshot(s, ZoneInfo("Asia/Tokyo"), cached)]
    feed = ChangeFeed(factory, lambda: box[0], lambda snap: box.__setitem__(0, snap))
    while feed.step():
        pass
    took = time.perf_counter() - t
    lost = box[0].card("felica", victim, 1).credential
    assert lost is not None and lost.state == CredentialState.LOST, lost
    with factory.begin() as s:  # as it was, for the next run
        s.execute(
            update(Credential)
            .where(Credential.card_id == victim)
            .values(state=CredentialState.ACTIVE)
        )
    print(f"{took:.2f} {rss_mib():.0f} {before:.0f} {len(box[0].base.cred_id)}")


def raw_scan(path: str) -> None:
    """(subprocess) raw baseline: read every credential's id and card id."""
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    n = sum(1 for _ in conn.execute("SELECT id, person_id, card_id, state FROM credentials"))
    print(f"{time.perf_counter() - t:.2f} {rss_mib():.0f} {n}")


def capacity(work: Path, n: int) -> None:
    path = work / f"people-{n}.db"
    t = time.perf_counter()
    url = build_people_only(path, n)
    print(f"  (built {n:,} cardholders in {time.perf_counter() - t:.0f} s)", flush=True)
    me = [sys.executable, "-m", "bench.bench_controller_scale"]
    cache = str(work / f"people-{n}.cache.bin")
    out = subprocess.run(
        [*me, "--load-only", url, "--cache", cache], capture_output=True, text=True, check=True
    )
    took, rss, base, count, wrote = out.stdout.split()
    raw = subprocess.run([*me, "--raw-scan", str(path)], capture_output=True, text=True, check=True)
    raw_s, raw_rss, _ = raw.stdout.split()
    print(
        f"start-up at {int(count):,} cardholders, read from the database: {float(took):.1f} s, "
        f"RSS {rss} MiB (interpreter + libraries alone {base} MiB; the cache file written in "
        f"{float(wrote):.1f} s, {Path(cache).stat().st_size / 2**20:.0f} MiB) | raw scan of "
        f"credentials {raw_s} s, RSS {raw_rss} MiB",
        flush=True,
    )
    out = subprocess.run(
        [*me, "--load-cached", url, "--cache", cache], capture_output=True, text=True, check=True
    )
    c_took, c_rss, c_base, _ = out.stdout.split()
    raw = subprocess.run([*me, "--raw-scan", str(path)], capture_output=True, text=True, check=True)
    raw_s, raw_rss, _ = raw.stdout.split()
    print(
        f"start-up at {int(count):,} cardholders from the local cache (+ a change made while "
        f"down): {float(c_took):.2f} s, RSS {c_rss} MiB (interpreter + libraries alone "
        f"{c_base} MiB) | raw scan of credentials {raw_s} s, RSS {raw_rss} MiB",
        flush=True,
    )


# --- the controller on the scale database -----------------------------------------------


class Probe:
    """Times each reader's feedback (given after the commit that holds the decision)."""

    def __init__(self, ctl: Any) -> None:
        from readers import Feedback

        self.final = {Feedback.GRANTED, Feedback.DENIED, Feedback.WAIT}
        self.lock = threading.Condition()
        self.seen: dict[str, list[float]] = {}
        self.kinds: dict[str, list[Any]] = {}
        self.count = 0
        original: Callable[..., None] = ctl.feedback

        def feedback(reader_id: str, kind: Any) -> None:
            if kind in self.final:
                with self.lock:
                    self.seen.setdefault(reader_id, []).append(time.perf_counter())
                    self.kinds.setdefault(reader_id, []).append(kind)
                    self.count += 1
                    self.lock.notify_all()
            original(reader_id, kind)

        ctl.feedback = feedback

    def wait_reader(self, reader_id: str, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.seen.get(reader_id, ())) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{reader_id}: {len(self.seen.get(reader_id, ()))} of {n}")
                self.lock.wait(left)

    def wait_count(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.count} of {n} decisions")
                self.lock.wait(left)


def present(ctl: Any, reader: str, card: str) -> float:
    from readers.events import CardPresented

    t = time.perf_counter()
    ctl.queue.put(CardPresented(reader, "felica", card, time.monotonic(), datetime.now(UTC)))
    return t


def sequential(ctl: Any, probe: Probe, rng: random.Random, people: int, doors: int, n: int,
               skip: set[int] = frozenset()) -> list[float]:  # type: ignore[assignment]  # fmt: skip
    lat = []
    for _ in range(n):
        d = rng.choice([x for x in range(doors) if x not in skip]) if skip else rng.randrange(doors)
        rin, _ = reader_ids(d)
        before = len(probe.seen.get(rin, ()))
        t = present(ctl, rin, card_id(rng.randint(1, people)))
        probe.wait_reader(rin, before + 1)  # this reader's answer (another door's may come)
        lat.append(probe.seen[rin][-1] - t)
    return lat


def scale_run(args: argparse.Namespace) -> None:
    from controller.daemon import Controller
    from db.engine import make_engine, make_session_factory, session_scope
    from db.models import Credential, CredentialState, Door
    from domain.config import load_config
    from domain.pins import hash_pin
    from hardware.sim import SimBackend
    from readers.events import KeypadInput, ReaderOffline, ReaderOnline

    work = Path(args.work)
    db = work / "scale.db"
    t = time.perf_counter()
    copy_db(Path(args.db), db)
    print(f"  (copied the scale database in {time.perf_counter() - t:.0f} s)", flush=True)
    url = f"sqlite:///{db}"
    bring_up_to_date(url)
    raw_rows = raw_commit_per_row(db, args.taps)
    raw_group = raw_group_commit(db, 30_000)

    cfg = load_config(args.site, data_dir=work)
    cfg = replace(cfg, database=replace(cfg.database, url=url))
    engine = make_engine(url, synchronous_full=True, busy_timeout_ms=200)
    factory = make_session_factory(engine)
    with factory() as s:
        people = int(s.execute(select_max_person()).scalar() or 0)
        events = int(s.execute(select_max_event()).scalar() or 0)
    raw_event_rows = raw_event_commit_per_row(db, args.taps, people)
    raw_event_quiet = raw_event_commit_per_row(db, args.taps, people, auto_checkpoint=False)
    doors = len(cfg.doors)
    rss0 = rss_mib()
    ctl = Controller(cfg, session_factory=factory, backend=SimBackend())
    t = time.perf_counter()
    ctl.start()
    started = time.perf_counter() - t
    print(
        f"controller start on {people:,} people / {events:,} events / {doors} doors: "
        f"{started:.1f} s, RSS +{rss_mib() - rss0:.0f} MiB",
        flush=True,
    )
    t = time.perf_counter()
    assert ctl.cache_writer is not None
    ctl.cache_writer.saved.wait(600)  # its own thread; not measured with the taps
    print(f"  (memory cache written {time.perf_counter() - t:.1f} s after the start)", flush=True)
    probe = Probe(ctl)
    rng = random.Random(7)
    try:
        sequential(ctl, probe, rng, people, doors, 50)  # warm up
        lat = sequential(ctl, probe, rng, people, doors, args.taps)
        print(
            f"sequential taps: p50 {ms(pct(lat, 50))} / p99 {ms(pct(lat, 99))}, "
            f"{len(lat) / sum(lat):.0f}/s | raw INSERT+COMMIT per row (synchronous=FULL): "
            f"p50 {ms(pct(raw_rows, 50))} / p99 {ms(pct(raw_rows, 99))}, "
            f"{len(raw_rows) / sum(raw_rows):.0f}/s | raw INSERT of an event row into the "
            f"events table + COMMIT: p50 {ms(pct(raw_event_rows, 50))} / "
            f"p99 {ms(pct(raw_event_rows, 99))} (SQLite's checkpoint off, as on nyutai's "
            f"writer: p50 {ms(pct(raw_event_quiet, 50))} / p99 {ms(pct(raw_event_quiet, 99))})",
            flush=True,
        )

        ctl.recorder.commit_seconds.clear()
        ctl.recorder.batch_sizes.clear()
        before = probe.count
        seen_before = {r: len(ts) for r, ts in probe.seen.items()}
        sent: dict[str, list[float]] = {}
        cpu = time.process_time()
        t = time.perf_counter()
        for i in range(args.burst):
            rin, _ = reader_ids(i % doors)
            sent.setdefault(rin, []).append(present(ctl, rin, card_id(rng.randint(1, people))))
        probe.wait_count(before + args.burst)
        took = time.perf_counter() - t
        cpu_ms = (time.process_time() - cpu) * 1000 / args.burst
        q2c = list(ctl.recorder.commit_seconds)
        batches = list(ctl.recorder.batch_sizes)
        to_feedback = [  # each reader answers its presentations in order
            got - put
            for rin, puts in sent.items()
            for put, got in zip(puts, probe.seen[rin][seen_before.get(rin, 0) :], strict=False)
        ]
        print(
            f"{args.burst:,} presentations over {doors} doors at once: "
            f"{args.burst / took:,.0f}/s, queue-to-commit p50 {ms(pct(q2c, 50))} / "
            f"p99 {ms(pct(q2c, 99))} ({len(batches)} commits, largest {max(batches)}); "
            f"presentation to feedback p50 {ms(pct(to_feedback, 50))} / "
            f"p99 {ms(pct(to_feedback, 99))} | "
            f"raw group commit of 100: {raw_group:,.0f} rows/s; CPU per presentation "
            f"{cpu_ms:.2f} ms (all threads) | raw group commit {RAW_GROUP_CPU_MS:.3f} ms per row",
            flush=True,
        )

        # one door asks for card + PIN; a staff member there types a wrong PIN every 30 taps
        pin_person = 1
        with session_scope(factory) as s:
            s.query(Door).filter(Door.code == "door-00").update({"pin_required": True})
            cred = s.query(Credential).filter(Credential.person_id == pin_person).one()
            cred.pin_hash = hash_pin("864209")
            cred.state = CredentialState.ACTIVE
        ctl.catch_up()
        base = sequential(ctl, probe, rng, people, doors, 600, skip={0})
        with_pin: list[float] = []
        pin_reader, _ = reader_ids(0)
        for k in range(20):
            present(ctl, pin_reader, card_id(pin_person))
            ctl.queue.put(KeypadInput(pin_reader, "135792#", time.monotonic()))
            with_pin += sequential(ctl, probe, rng, people, doors, 30, skip={0})
            if k % 5 == 4:  # a locked card would stop the argon2 work: unlock it again
                with session_scope(factory) as s:
                    c = s.query(Credential).filter(Credential.person_id == pin_person).one()
                    c.state, c.failed_pin_count = CredentialState.ACTIVE, 0
        print(
            f"other doors while door-00 takes card + wrong PIN every 30 taps: p99 "
            f"{ms(pct(with_pin, 99))} vs {ms(pct(base, 99))} without (p50 "
            f"{ms(pct(with_pin, 50))} vs {ms(pct(base, 50))})",
            flush=True,
        )

        t = time.perf_counter()
        for rid in list(ctl.readers)[:128]:
            ctl.queue.put(ReaderOffline(rid, "bench"))
        for rid in list(ctl.readers)[:128]:
            ctl.queue.put(ReaderOnline(rid))
        ctl.sync(60)
        print(
            f"256 reader online/offline changes: {time.perf_counter() - t:.2f} s in all "
            f"(rows, alarms and status committed)",
            flush=True,
        )

        from readers import Feedback

        rin, _ = reader_ids(3)
        while True:  # someone granted at door-03 now
            victim = rng.randint(2, people)
            before = probe.count
            present(ctl, rin, card_id(victim))
            probe.wait_count(before + 1)
            if probe.kinds[rin][-1] == Feedback.GRANTED:
                break
        with session_scope(factory) as s:
            c = s.query(Credential).filter(Credential.person_id == victim).one()
            c.state = CredentialState.LOST
        t = time.perf_counter()
        while True:
            before = probe.count
            present(ctl, rin, card_id(victim))
            probe.wait_count(before + 1)
            if probe.kinds[rin][-1] == Feedback.DENIED:
                break
        print(
            f"revocation (card reported lost) to the door: {ms(time.perf_counter() - t)} "
            f"after the commit (feed poll {ctl.feed.poll_seconds * 1000:.0f} ms)",
            flush=True,
        )

        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        locked = sequential(ctl, probe, rng, people, doors, min(args.taps, 500))
        offline = ctl.recorder.offline
        blocker.execute("ROLLBACK")
        blocker.close()
        t = time.perf_counter()
        deadline = time.monotonic() + 120
        while ctl.recorder.offline and time.monotonic() < deadline:
            time.sleep(0.01)
        ctl.sync(60)
        print(
            f"taps while another connection holds the exclusive lock: p50 "
            f"{ms(pct(locked, 50))} / p99 {ms(pct(locked, 99))} (journalled: {offline}; "
            f"journal written back {time.perf_counter() - t:.2f} s after the lock ended) | "
            f"unlocked p50 {ms(pct(lat, 50))} / p99 {ms(pct(lat, 99))}",
            flush=True,
        )
    finally:
        ctl.stop()
    # a restart of the same controller: the memory from its local cache, then the changes
    # made since (the lost card above, the PIN door...)
    ctl = Controller(cfg, session_factory=factory, backend=SimBackend())
    t = time.perf_counter()
    ctl.start()
    print(
        f"controller restart with its memory cache: {time.perf_counter() - t:.2f} s "
        f"(first start {started:.1f} s)",
        flush=True,
    )
    ctl.stop()
    engine.dispose()


def select_max_person() -> Any:
    from sqlalchemy import func, select

    from db.models import Person

    return select(func.max(Person.id))


def select_max_event() -> Any:
    from sqlalchemy import func, select

    from db.models import Event

    return select(func.max(Event.id))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", help="a scale database made by bench/scale_data.py (copied)")
    ap.add_argument("--site", help="its site.toml")
    ap.add_argument("--work", default="/tmp/ctlbench", help="where copies and builds go")
    ap.add_argument("--capacity", default="", help="cardholder counts, e.g. 2000000,10000000")
    ap.add_argument("--taps", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=3000)
    ap.add_argument(
        "--ahead", type=int, help="works the door thread may run ahead of the writer (a trial)"
    )
    ap.add_argument("--load-only", help=argparse.SUPPRESS)
    ap.add_argument("--raw-scan", help=argparse.SUPPRESS)
    ap.add_argument("--load-cached", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ahead is not None:
        from controller import recorder

        recorder.AHEAD_WORKS = args.ahead
    if args.load_only:
        load_only(args.load_only, args.cache)
        return
    if args.load_cached:
        load_cached(args.load_cached, args.cache)
        return
    if args.raw_scan:
        raw_scan(args.raw_scan)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"nyutai controller at scale ({os.cpu_count()} CPUs), {datetime.now(UTC):%Y-%m-%d}")
    for n in (int(x) for x in args.capacity.split(",") if x):
        capacity(work, n)
    if args.db:
        scale_run(args)


if __name__ == "__main__":
    main()
