"""Console pages, CSV export and verify on a generated database, beside same-run baselines.

    python -m bench.bench_scale --url sqlite:////tmp/scale/nyutai.db [--rounds 20]

The database comes from bench/scale_data.py (build it once; this script only reads, apart
from one operator row and the search structures it adds when they are missing). Printed:
p50/p95 of each page through the Flask app in-process (no network), the CSV export's rows/s
and peak RSS beside a raw sqlite3 read + join + csv.writer of the same rows, and verify's
rows/s beside a plain read + SHA-256 of the same rows. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import resource
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, make_url, select

from db.engine import make_engine, make_session_factory
from db.models import Base, Event, Operator
from db.search import create_search
from db.verify import verify_log
from web import create_app, eventquery
from web.accounts import hash_password

PASSWORD = "bench password 1234"
_BENCH_HASH = hash_password(PASSWORD)
MIX_CLIENTS = 16

PAGES = [
    "/dashboard/live",
    "/visitors/",
    "/visitors/escorts.json?area=1&q=佐藤",
    "/occupancy/",
    "/people/",
    "/people/?q=藤 誠",
    "/authorizations/",
    "/authorizations/?area=3",
    "/review/",
    "/events/",
    "/events/?visitors=1",
    "/events/?reason=antipassback",
    "/events/?area=3",
    "/events/?person=佐藤",
    "/events/?person=藤 誠",
    "/events/?person=%2342",
]


def _prepare(url: str) -> None:
    """Indexes and name search of the current models on a database built before them."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)  # only what is missing: new indexes on old tables
    for table in Base.metadata.sorted_tables:
        for ix in table.indexes:
            ix.create(engine, checkfirst=True)
    with engine.begin() as conn:
        has_fts = (
            conn.dialect.name != "sqlite"
            or conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name='people_fts'").first()
        )
        if conn.dialect.name != "sqlite":
            create_search(conn)  # PostgreSQL's DDL is IF NOT EXISTS throughout
        if not has_fts:
            create_search(conn)
    with make_session_factory(engine)() as s:
        # auditors see every page measured here but the guard's (visitors); neither role
        # needs TOTP to sign in (managers and administrators do: web/mfa.py)
        for name, role in [("bench", "auditor"), ("bench-guard", "guard")] + [
            (f"bench-{i}", "auditor") for i in range(MIX_CLIENTS)
        ]:
            op = s.scalar(select(Operator).where(Operator.username == name))
            if op is None:
                op = Operator(
                    username=name,
                    display_name=name,
                    role=role,
                    password_hash=_BENCH_HASH,
                )
                s.add(op)
            op.role = role  # a manager made by an older version of this script
        s.commit()
    engine.dispose()


def login(app: Flask, username: str) -> FlaskClient:
    c = app.test_client()
    html = c.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    resp = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"], username
    return c


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def pages(url: str, rounds: int, only: list[str] | None = None) -> None:
    app = create_app(test_config={"SECRET_KEY": "bench-" + "x" * 40, "NYUTAI_DATABASE_URL": url})
    auditor, guard = login(app, "bench"), login(app, "bench-guard")
    # CPU ms: this process's CPU time per request (the test client runs the app in-process),
    # which the other jobs on a shared machine inflate far less than the wall clock
    print(f"{'page':45s} {'p50 ms':>8s} {'p95 ms':>8s} {'CPU p95':>8s} {'KiB':>7s}")
    for path in PAGES:
        if only and not any(path.startswith(o) for o in only):
            continue
        times, cpu, size = [], [], 0
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            resp = (guard if path.startswith("/visitors") else auditor).get(path)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            size = len(resp.get_data())
            if resp.status_code != 200:
                print(f"  {path}: HTTP {resp.status_code}")
                break
        p50, p95 = statistics.median(times), _pct(times, 0.95)
        print(f"{path:45s} {p50:8.1f} {p95:8.1f} {_pct(cpu, 0.95):8.1f} {size / 1024:7.0f}")


def export(url: str, days: int) -> None:
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        last = s.scalar(select(func.max(Event.occurred_at)))
    assert last is not None
    since = last - timedelta(days=days)
    f = eventquery.EventFilter(since=since)
    # both timed passes read a warm page cache: the first of a pair used to pay the disk
    # alone (0.43 cold vs 0.80 warm at 10M events)
    _raw_csv(url, since)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    n = 0
    with make_session_factory(engine)() as s:
        for chunk in eventquery.csv_stream(s, f, "ja", UTC, batch=5000):
            n += chunk.count("\r\n")
    ours = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    m, base, name = _raw_csv(url, since)
    print(
        f"CSV export {days} d: {n - 1:,} rows, {(n - 1) / ours:,.0f} rows/s, "
        f"peak RSS {rss / 1024:.0f} MiB (before {rss0 / 1024:.0f})"
    )
    print(f"  baseline raw {name} + join + csv.writer: {m:,} rows, {m / base:,.0f} rows/s")


def _raw_csv(url: str, since: datetime) -> tuple[int, float, str]:
    """The baseline: the raw driver (sqlite3 / psycopg), the same join, csv.writer, no
    formatting. (rows, seconds, driver)"""
    con, cur, ph, name = _raw(url)
    t0 = time.perf_counter()
    buf = io.StringIO()
    w = csv.writer(buf)
    m = 0
    cur.execute(
        "SELECT e.id, e.occurred_at, e.reader, e.direction, e.visitor, e.decision, e.reason,"
        " e.purpose, e.raw_card_id, e.hash, d.name, p.name, q.name FROM events e"
        " LEFT JOIN doors d ON d.id = e.door_id LEFT JOIN people p ON p.id = e.person_id"
        f" LEFT JOIN people q ON q.id = e.escort_person_id WHERE e.occurred_at >= {ph}"
        " ORDER BY e.occurred_at DESC, e.id DESC",
        (_naive(since) if name == "postgresql" else _naive(since).isoformat(sep=" "),),
    )
    while rows := cur.fetchmany(5000):
        w.writerows(rows)
        m += len(rows)
        buf.seek(0)
        buf.truncate()
    base = time.perf_counter() - t0
    con.close()
    return m, base, name


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _raw(url: str) -> tuple[Any, Any, str, str]:
    """A plain DBAPI connection and a streaming cursor on it (psycopg: server-side), the
    placeholder and the dialect name: the baselines use the driver with nothing on top."""
    engine = make_engine(url)
    name = engine.dialect.name
    if name == "sqlite":
        con: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        return con, con.cursor(), "?", name
    import psycopg

    con = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    return con, con.cursor(name="baseline"), "%s", name


def verify(url: str, days: int) -> None:
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        top = s.scalar(select(func.max(Event.seq))) or 0
        last = s.scalar(select(func.max(Event.occurred_at)))
        assert last is not None
        start = s.scalar(
            select(func.min(Event.seq)).where(Event.occurred_at >= last - timedelta(days=days))
        )
    assert start is not None
    con, cur, ph, name = _raw(url)
    t0 = time.perf_counter()
    cur.execute(f"SELECT * FROM events WHERE seq >= {ph} ORDER BY seq", (start,))
    m = 0
    while rows := cur.fetchmany(5000):
        for r in rows:
            hashlib.sha256(repr(r).encode()).hexdigest()
        m += len(rows)
    base = time.perf_counter() - t0
    con.close()
    # ours: the walk from ``start`` (what --from does after a checkpoint at that seq)
    from db import verify as v

    with make_session_factory(engine)() as s:
        result = v.LogResult("events")
        w = v._Walker(s, "events", result, 20)
        prev = s.scalar(select(Event.prev_hash).where(Event.seq == start))
        t0 = time.perf_counter()
        w.walk(start, prev or "", set())
        ours = time.perf_counter() - t0
    engine.dispose()
    print(
        f"verify {days} d (seq {start:,}..{top:,}): {result.rows_checked:,} rows, "
        f"{result.rows_checked / ours:,.0f} rows/s, findings {len(result.findings)}"
    )
    print(f"  baseline plain read + SHA-256: {m:,} rows, {m / base:,.0f} rows/s")
    _ = verify_log  # the full entry point is what `nyutai verify` runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=1, help="export/verify runs (alternating)")
    ap.add_argument("--skip", default="", help="comma list of: pages,export,verify")
    ap.add_argument("--pages", default="", help="comma list of page prefixes to measure only")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {a.url}")
    _prepare(a.url)
    if "pages" not in skip:
        pages(a.url, a.rounds, [p for p in a.pages.split(",") if p])
    # on a shared machine single runs swing by 2x: repeat the pairs (each figure is printed
    # beside the baseline of the same moment) and read the best of each
    for _ in range(a.repeat):
        if "export" not in skip:
            export(a.url, a.days)
        if "verify" not in skip:
            verify(a.url, a.days)


if __name__ == "__main__":
    main()
