"""The monthly report page and its downloads, through the web app (build + render).

    python -m bench.web_monthly_report [--events 50000] [--people 200] [--history 0] [--profile]

A month of granted in/out pairs and some denials for ``--people`` staff in two areas,
bulk-inserted without the hash chain (the report reads; appending is measured elsewhere).
``--history N`` adds N earlier months of the same traffic before the reported month: the
report's time must not grow with the age of the log (who is inside at the month start comes
from one grouped query, not from a replay of every crossing ever made).
The times are one manager's requests through the Flask test client, best of three.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Area, Event, Operator, Person
from db.reports.monthly import build_monthly_report
from db.reports.monthly_pdf import monthly_pdf
from domain.config import DEFAULT_TIMEZONE, load_zone
from web import create_app
from web.accounts import hash_password

PASSWORD = "bench-password-long-enough"
ZONE = load_zone(DEFAULT_TIMEZONE)


def fill(url: str, events: int, people: int, history: int = 0) -> None:
    factory = make_session_factory(make_engine(url))
    with factory.begin() as s:
        s.add(
            Operator(
                username="m",
                display_name="M",
                role="manager",
                password_hash=hash_password(PASSWORD),
            )
        )
        areas = [Area(code="a", name="区域A"), Area(code="b", name="区域B")]
        s.add_all(areas)
        ppl = [Person(name=f"従業者 {i:04d}") for i in range(people)]
        s.add_all(ppl)
        s.flush()
        area_ids, person_ids = [a.id for a in areas], [p.id for p in ppl]
    t0 = datetime(2026, 4, 30, 15, tzinfo=UTC)  # 2026-05-01 00:00 in Tokyo
    step = timedelta(days=30) / events
    rows = []
    engine = make_engine(url)
    with engine.begin() as conn:
        for i in range(-events * history, events):  # negative i: the earlier months
            denied = i % 10 == 0
            rows.append(
                {
                    "occurred_at": t0 + step * i,
                    "kind": "presentation",
                    "area_id": area_ids[i % 2],
                    "person_id": person_ids[(i // 2) % people],
                    "direction": "in" if (i // 2) % 2 == 0 else "out",
                    "decision": "denied" if denied else "granted",
                    "reason": "outside_schedule" if denied else "granted",
                }
            )
            if len(rows) == 10_000:
                conn.execute(insert(Event), rows)
                rows.clear()
        if rows:
            conn.execute(insert(Event), rows)


def best_of(fn: Callable[[], object], n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def profile(factory: sessionmaker[Session]) -> None:
    """Where the time goes (cProfile, cumulative), for docs/evidence.md."""
    with factory() as s:
        prof = cProfile.Profile()
        report = prof.runcall(build_monthly_report, s, "2026-05", zone=ZONE)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
    prof = cProfile.Profile()
    prof.runcall(monthly_pdf, report)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--history", type=int, default=0, help="earlier months of the same traffic")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the report build and the PDF instead"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        fill(url, args.events, args.people, args.history)
        factory = make_session_factory(make_engine(url))

        def build() -> None:
            with factory() as s:
                build_monthly_report(s, "2026-05", zone=ZONE)

        if args.profile:
            profile(factory)
            return
        total = args.events * (args.history + 1)
        print(f"build_monthly_report alone: {best_of(build):.2f} s ({total} events in the log)")
        app = create_app(test_config={"SECRET_KEY": "b" * 64, "NYUTAI_DATABASE_URL": url})
        app.config["WTF_CSRF_ENABLED"] = False
        c = app.test_client()
        c.post("/login", data={"username": "m", "password": PASSWORD})
        for path in ("/reports/monthly", "/reports/monthly.csv", "/reports/monthly.pdf"):
            url_path = f"{path}?month=2026-05"
            resp = c.get(url_path)
            assert resp.status_code == 200, (path, resp.status_code)
            dt = best_of(lambda p=url_path: c.get(p))  # type: ignore[misc]
            print(f"{path}: {dt:.2f} s, {len(resp.data) / 1024:.0f} KiB ({args.events} events)")


if __name__ == "__main__":
    main()
