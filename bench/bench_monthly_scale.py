"""The monthly report (section 10) on a generated database, beside a same-run baseline.

    python -m bench.bench_monthly_scale --url sqlite:////tmp/copy/nyutai.db [--month 2026-11]

The database comes from bench/scale_data.py (``generate(url, people=, events=)``); use a
copy: the report stores its occupancy snapshots (who was inside at each month's bounds).
The month before is built first, as the monthly job does every month: the reported month
then starts from the snapshot it stored instead of a pass over the whole history.
Printed: the time and peak RSS of ``build_monthly_report`` for every area, of the CSV and
the PDF renderings, and of the report page through the Flask app in-process, beside a
raw-SQLite baseline from the same run: one plain ``GROUP BY area, person, direction``
over the month's granted events (the least any per-person count must read).
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import time
from datetime import UTC
from typing import Any

from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import Event, Person
from db.reports.monthly import build_monthly_report, month_bounds
from db.reports.monthly_csv import monthly_csv
from db.reports.monthly_pdf import monthly_pdf
from domain.config import DEFAULT_TIMEZONE, load_zone

ZONE = load_zone(DEFAULT_TIMEZONE)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(url: str, month: str) -> tuple[float, int, int, str]:
    """(seconds, grouped rows, events, driver) of a raw GROUP BY over the month, on the
    driver itself (sqlite3 or psycopg)."""
    start, end = month_bounds(month, ZONE)
    bounds = [t.astimezone(UTC).replace(tzinfo=None) for t in (start, end)]
    sql = (
        "SELECT area_id, person_id, direction, count(*) FROM events "
        "WHERE occurred_at >= {p} AND occurred_at < {p} AND decision = 'granted' "
        "GROUP BY area_id, person_id, direction"
    )
    if url.startswith("sqlite:///"):
        con: Any = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        sql, params, name = sql.format(p="?"), [t.isoformat(" ") for t in bounds], "sqlite3"
    else:
        con = make_engine(url).raw_connection()
        sql, params, name = sql.format(p="%s"), bounds, "psycopg"
    t0 = time.perf_counter()
    cur = con.cursor()
    cur.execute(sql, params)
    rows = cur.fetchall()
    took = time.perf_counter() - t0
    con.close()
    return took, len(rows), sum(r[3] for r in rows), name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="a database made by bench/scale_data.py")
    ap.add_argument("--month", default="2026-11", help="YYYY-MM (the generator ends 2026-12-01)")
    ap.add_argument("--no-page", action="store_true", help="skip the web page")
    ap.add_argument(
        "--controller",
        action="append",
        default=[],
        help="also build the report filtered to this controller (repeatable; e.g. main)",
    )
    args = ap.parse_args()
    engine = make_engine(args.url)
    factory = make_session_factory(engine)
    start, end = month_bounds(args.month, ZONE)
    with factory() as s:
        people = s.scalar(select(func.count()).select_from(Person))
        events = s.scalar(
            select(func.count()).where(Event.occurred_at >= start, Event.occurred_at < end)
        )
    print(f"database: {people:,} people; month {args.month}: {events:,} events")
    took, groups, granted, driver = _baseline(args.url, args.month)
    print(
        f"baseline raw {driver} GROUP BY area, person, direction: {took:.2f} s "
        f"({groups:,} groups, {granted:,} granted events)"
    )
    from db.models import OccupancySnapshot

    with factory() as s:
        stored = s.scalar(select(func.count()).select_from(OccupancySnapshot))
    if stored:
        print(f"note: {stored} occupancy snapshots already stored (from an earlier run)")
    y, m = (int(x) for x in args.month.split("-"))
    previous = f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"
    t0 = time.perf_counter()
    with factory() as s:
        build_monthly_report(s, previous, zone=ZONE, site_name="bench")
        s.commit()  # its end-of-month occupancy snapshot is the next month's start
    print(
        f"build_monthly_report {previous} (the month before; who was inside at its start "
        f"from the whole history unless stored): {time.perf_counter() - t0:.2f} s"
    )
    t0 = time.perf_counter()
    with factory() as s:
        report = build_monthly_report(s, args.month, zone=ZONE, site_name="bench")
        s.commit()
    build = time.perf_counter() - t0
    lines = sum(len(a.people) + len(a.still_inside) + len(a.visits) for a in report.areas)
    print(
        f"build_monthly_report: {build:.2f} s, {len(report.areas)} areas, "
        f"{sum(a.entries for a in report.areas):,} entries, "
        f"{sum(a.staff_count + a.visitor_count for a in report.areas):,} person-area lines "
        f"counted, {lines:,} listed; peak RSS {_rss_mib():.0f} MiB"
    )
    if args.controller:
        t0 = time.perf_counter()
        with factory() as s:
            mine = build_monthly_report(
                s, args.month, zone=ZONE, site_name="bench", controllers=args.controller
            )
        print(
            f"build_monthly_report --controller {','.join(args.controller)}: "
            f"{time.perf_counter() - t0:.2f} s, {len(mine.areas)} areas, "
            f"{sum(a.entries for a in mine.areas):,} entries (all controllers: {build:.2f} s)"
        )
    t0 = time.perf_counter()
    body = monthly_csv(report)
    print(f"CSV: {time.perf_counter() - t0:.2f} s, {len(body.encode()) / 1024:.0f} KiB")
    t0 = time.perf_counter()
    pdf = monthly_pdf(report)
    print(f"PDF: {time.perf_counter() - t0:.2f} s, {len(pdf) / 1024:.0f} KiB")
    print(f"peak RSS after renderings: {_rss_mib():.0f} MiB")
    if not args.no_page:
        _page(args.url, args.month)


def _page(url: str, month: str) -> None:
    """The report page as a manager opens it (the first request, then a repeat)."""
    from db.models import Operator
    from web import create_app
    from web.accounts import hash_password

    password = "bench-password-long-enough"
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        if s.scalar(select(Operator).where(Operator.username == "bench-auditor")) is None:
            s.add(
                Operator(
                    username="bench-auditor",
                    display_name="bench",
                    role="auditor",
                    password_hash=hash_password(password),
                )
            )
            s.commit()
    engine.dispose()
    app = create_app(test_config={"SECRET_KEY": "bench-" + "x" * 40, "NYUTAI_DATABASE_URL": url})
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    client.post(
        "/login", data={"username": "bench-auditor", "password": password, "csrf_token": token}
    )
    t0 = time.perf_counter()
    r = client.get(f"/reports/monthly?month={month}")
    first = time.perf_counter() - t0
    shown = 'id="report-summary"' in r.text
    answer = first
    print(
        f"report page, first answer: {first:.2f} s, HTTP {r.status_code}, "
        f"{len(r.data) / 1024:.0f} KiB, {'the report' if shown else 'progress (building)'}"
    )
    while not shown:
        time.sleep(0.5)
        t1 = time.perf_counter()
        r = client.get(f"/reports/monthly?month={month}")
        answer = time.perf_counter() - t1
        shown = 'id="report-summary"' in r.text
    print(
        f"report page, ready after {time.perf_counter() - t0:.2f} s "
        f"(the last answer, the report itself: {answer:.2f} s), {len(r.data) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
