"""Evidence figures: chained appends, verification and the monthly report on SQLite.

Usage: python bench/evidence_bench.py [--events 20000]
Prints rows/s for appends committed one by one (as the controller does), appends in one
transaction, verification, and the time to build a month's report. Numbers go to
docs/evidence.md; they are never asserted in tests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete

from db.engine import make_engine, make_session_factory
from db.eventlog import append_event
from db.migrate import upgrade
from db.models import Area, Event
from db.reports.monthly import build_monthly_report
from db.verify import verify_log
from domain.config import DEFAULT_TIMEZONE, load_zone

ZONE = load_zone(DEFAULT_TIMEZONE)


def _event(i: int, area_id: int) -> Event:
    return Event(
        occurred_at=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(seconds=30 * i),
        kind="presentation",
        area_id=area_id,
        person_id=None,
        direction="in" if i % 2 else "out",
        decision="granted" if i % 5 else "denied",
        reason="granted" if i % 5 else "unknown_card",
        raw_card_id=f"{i:016X}",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    n = ap.parse_args().events
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        factory = make_session_factory(make_engine(url))
        with factory.begin() as s:
            area = Area(code="a", name="A")
            s.add(area)
            s.flush()
            area_id = area.id

        single = min(n, 2000)
        t = time.perf_counter()
        for i in range(single):  # baseline: the same rows without the chain, then removed
            with factory() as s:
                s.add(_event(i, area_id))
                s.commit()
        dt = time.perf_counter() - t
        print(f"baseline insert without chain, one commit each: {single / dt:,.0f} rows/s")
        with factory.begin() as s:
            s.execute(delete(Event))

        t = time.perf_counter()
        for i in range(single):
            with factory() as s:
                append_event(s, _event(i, area_id))
                s.commit()
        dt = time.perf_counter() - t
        print(f"append, one commit each: {single / dt:,.0f} rows/s ({single} rows)")

        t = time.perf_counter()
        with factory() as s:
            for i in range(single, n):
                append_event(s, _event(i, area_id))
            s.commit()
        dt = time.perf_counter() - t
        print(f"append, one transaction: {(n - single) / dt:,.0f} rows/s ({n - single} rows)")

        t = time.perf_counter()
        with factory() as s:
            r = verify_log(s, "events", None)
        dt = time.perf_counter() - t
        assert r.ok
        print(f"verify: {r.rows_checked / dt:,.0f} rows/s ({r.rows_checked} rows, {dt:.2f} s)")

        t = time.perf_counter()
        with factory() as s:
            build_monthly_report(s, "2026-05", zone=ZONE, now=datetime(2026, 7, 1, tzinfo=UTC))
        print(f"monthly report data ({n} events): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
