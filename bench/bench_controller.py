"""Controller throughput: the pure decision, and taps end to end (decision + committed row).

    python bench/bench_controller.py [--taps 500]

Prints decisions/s for the pure function and taps/s with p50/p99 latency through the
daemon on SQLite (WAL, synchronous=FULL on the controller's connection), and on PostgreSQL
when NYUTAI_BENCH_PG_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.daemon import Controller  # noqa: E402
from controller.decision import Presence, decide  # noqa: E402
from db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Direction  # noqa: E402
from domain.config import load_config  # noqa: E402
from hardware.sim import SimBackend  # noqa: E402
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, seed_people  # noqa: E402
from readers.events import CardPresented  # noqa: E402
from tests.controller.test_decision_table import DOOR, OK_STAFF  # noqa: E402


def bench_decision(n: int = 200_000) -> float:
    now = datetime.now(UTC)
    start = time.perf_counter()
    for _ in range(n):
        decide(OK_STAFF, DOOR, Direction.IN, Presence(False), now)
    return n / (time.perf_counter() - start)


def bench_taps(url: str, data_dir: Path, taps: int) -> tuple[float, float, float]:
    upgrade(url)
    cfg = load_config(DEMO_SITE, data_dir=data_dir)
    cfg = replace(cfg, database=replace(cfg.database, url=url))
    factory = make_session_factory(make_engine(url, synchronous_full=True))
    with session_scope(factory) as s:
        seed_people(s, cfg)
    ctl = Controller(cfg, session_factory=factory, backend=SimBackend())
    ctl.start()
    lat: list[float] = []
    try:
        card = DEMO_CARDS["yamada"][1]
        begin = time.perf_counter()
        for i in range(taps):
            reader = "sr-in" if i % 2 == 0 else "sr-out"  # in, out, in, out: granted each time
            t0 = time.perf_counter()
            ctl.on_card(CardPresented(reader, "felica", card, time.monotonic(), datetime.now(UTC)))
            ctl.recorder.wait_idle()  # the row is committed (the strike's release follows)
            lat.append(time.perf_counter() - t0)
            ctl.occupancy._areas.clear()  # no door walk: keep anti-passback out of the way
        total = time.perf_counter() - begin
    finally:
        ctl.stop()
    lat.sort()
    return taps / total, statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--taps", type=int, default=500)
    args = ap.parse_args()
    print(f"pure decision: {bench_decision():,.0f} decisions/s")
    with tempfile.TemporaryDirectory() as tmp:
        rate, p50, p99 = bench_taps(f"sqlite:///{tmp}/bench.db", Path(tmp), args.taps)
        print(f"SQLite taps end to end: {rate:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        pg = os.environ.get("NYUTAI_BENCH_PG_URL")
        if pg:
            rate, p50, p99 = bench_taps(pg, Path(tmp), args.taps)
            print(f"PostgreSQL taps end to end: {rate:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
