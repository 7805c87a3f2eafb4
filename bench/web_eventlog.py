"""Event log paging and CSV export on a large table: keyset vs OFFSET, export memory.

    python -m bench.web_eventlog [--rows 1000000] [--export-rows 200000]

Rows are bulk-inserted without the hash chain (reading is what is measured here).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Event
from web import eventquery


def fill(url: str, rows: int) -> None:
    engine = make_engine(url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    with engine.begin() as conn:
        for i in range(rows):
            batch.append(
                {
                    "occurred_at": t0 + timedelta(seconds=i // 3),
                    "kind": "presentation",
                    "decision": "granted" if i % 5 else "denied",
                    "reason": "granted" if i % 5 else "no_authorization",
                    "direction": "in",
                    "visitor": i % 17 == 0,
                    "raw_card_id": f"{i:016X}",
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Event), batch)
                batch.clear()
        if batch:
            conn.execute(insert(Event), batch)
    engine.dispose()


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--export-rows", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        t = time.perf_counter()
        fill(url, args.rows)
        print(f"inserted {args.rows} events in {time.perf_counter() - t:.1f} s")
        factory = make_session_factory(make_engine(url))
        f = eventquery.EventFilter()
        with factory() as s:
            first = eventquery.page(s, f)
            print(f"first page (50 rows): {timed(lambda: eventquery.page(s, f)):.1f} ms")
            # a cursor near the oldest rows: the deepest page an operator could reach
            deep = s.execute(
                select(Event).order_by(Event.occurred_at, Event.id).limit(1).offset(100)
            ).scalar_one()
            cursor = eventquery.encode_cursor(deep)
            print(
                f"deep page via keyset: {timed(lambda: eventquery.page(s, f, after=cursor)):.1f} ms"
            )
            offset = args.rows - 150
            sql = text("SELECT * FROM events ORDER BY occurred_at DESC, id DESC LIMIT 50 OFFSET :o")
            ms = timed(lambda: s.execute(sql, {"o": offset}).all(), 3)
            print(f"same depth via OFFSET (plain SQL, no joins): {ms:.1f} ms")
            fv = eventquery.EventFilter(visitors_only=True)
            print(f"filtered first page (visitors): {timed(lambda: eventquery.page(s, fv)):.1f} ms")
            del first
        zone = ZoneInfo("Asia/Tokyo")
        for n in (args.export_rows // 4, args.export_rows):
            until = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n // 3)
            fe = eventquery.EventFilter(until=until)
            for traced in (False, True):  # tracemalloc slows Python: time and memory apart
                with factory() as s:
                    if traced:
                        tracemalloc.start()
                    t = time.perf_counter()
                    size = rows = 0
                    for chunk in eventquery.csv_stream(s, fe, "ja", zone):
                        size += len(chunk.encode())
                        rows += chunk.count("\r\n")
                    elapsed = time.perf_counter() - t
                    if traced:
                        _cur, peak = tracemalloc.get_traced_memory()
                        tracemalloc.stop()
                if not traced:
                    print(
                        f"CSV export {rows - 1} rows: {elapsed:.1f} s "
                        f"({(rows - 1) / elapsed:,.0f} rows/s, {size / 1e6:.1f} MB)"
                    )
                else:
                    print(f"  peak Python memory during that export: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
