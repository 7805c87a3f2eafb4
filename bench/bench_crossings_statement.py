"""The recorder's batch-of-crossings statement on PostgreSQL (db.presence.write_postgresql):
server CPU per statement with the plan cache mode the writer's own connection uses
(``force_generic_plan``) beside PostgreSQL's default (``auto``, which planned it anew at
every execution), in alternating rounds on one connection in autocommit.

    NYUTAI_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python -m bench.bench_crossings_statement [--people 100000] [--batches 1500]

A fresh database is made on that server (dropped afterwards) with ``--people`` people, four
areas and half of the people inside; each statement writes 8 granted presentations and the
presence of their 8 people (half entering, half leaving), as a controller's group commit in
a burst does. Printed per round: the client's wall time and the server backend's CPU per
statement (Linux /proc: the server must run on this machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("force_generic_plan", "auto")
PER_BATCH = 8


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(url: str, people: int) -> tuple[int, list[int]]:
    from sqlalchemy import text

    from db.engine import make_engine
    from db.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO people (kind, name, designated, active, created_at, search_key) "
                "SELECT 'staff', 'p' || g, true, true, now(), 'p' || g "
                "FROM generate_series(1, :n) g"
            ),
            {"n": people},
        )
        c.execute(
            text(
                "INSERT INTO areas (code, name, permitted_devices, antipassback, escort_policy, "
                "visitor_exit_needs_escort, max_visitors_per_escort, two_person_rule, offline, "
                "created_at) SELECT 'a' || g, 'a' || g, '[]', 'alert', 'required', false, 3, "
                "false, 'fail_secure', now() FROM generate_series(1, 4) g"
            )
        )
        area = int(c.execute(text("SELECT min(id) FROM areas")).scalar_one())
        c.execute(
            text(
                "INSERT INTO presence (person_id, area_id, entered_at) "
                "SELECT id, :a + id % 4, now() FROM people WHERE id % 2 = 0"
            ),
            {"a": area},
        )
        c.execute(text("ANALYZE"))
        ids = [int(r[0]) for r in c.execute(text("SELECT id FROM people ORDER BY id"))]
    engine.dispose()
    return area, ids


class Batches:
    def __init__(self, area: int, people: list[int]) -> None:
        from controller.recorder import EVENT_COLUMNS

        self.columns = EVENT_COLUMNS
        self.area, self.people = area, people
        self.rng = random.Random(1)
        self.next_id = 1

    def __call__(self) -> tuple[list[dict[str, Any]], dict[tuple[int, int], Any]]:
        rows: list[dict[str, Any]] = []
        final: dict[tuple[int, int], Any] = {}
        now = datetime.now(UTC)
        for _ in range(PER_BATCH):
            person, i = self.rng.choice(self.people), self.next_id
            self.next_id += 1
            row = dict.fromkeys(self.columns)
            row.update(
                id=i, controller="bench", seq=i, prev_hash="0" * 64, hash=f"{i:064x}",
                occurred_at=now, kind="presentation", decision="granted", reason="granted",
                visitor=False, person_id=person, area_id=self.area, direction="in",
                reader="r1", technology="felica", raw_card_id="0123456789ABCDEF",
            )  # fmt: skip
            rows.append(row)
            inside = {"person_id": person, "area_id": self.area, "entered_at": now,
                      "event_id": i, "escort_person_id": None, "visit_id": None}  # fmt: skip
            final[(person, self.area)] = inside if self.rng.random() < 0.5 else None
        return rows, final


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=1_500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from bench.pg import scratch_database
    from db import presence
    from db.engine import make_engine

    with scratch_database() as url:
        area, people = seed(url, args.people)
        batch = Batches(area, people)
        engine = make_engine(url)
        print(f"{args.people:,} people, half inside; {PER_BATCH} crossings per statement")
        for r in range(args.rounds):
            for mode in MODES:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql(f"SET plan_cache_mode = {mode}")
                    pid = int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                    for _ in range(50):  # prepared by psycopg after 5, plan cache settled
                        rows, final = batch()
                        presence.write_postgresql(c, final, set(), "bench", rows)
                    cpu0, t0 = backend_cpu(pid), time.perf_counter()
                    for _ in range(args.batches):
                        rows, final = batch()
                        presence.write_postgresql(c, final, set(), "bench", rows)
                    wall, cpu = time.perf_counter() - t0, backend_cpu(pid) - cpu0
                label = "the writer's" if mode == MODES[0] else "default (before)"
                print(
                    f"round {r + 1}, plan_cache_mode {mode} ({label}): "
                    f"{1000 * wall / args.batches:.3f} ms per statement (client wall), "
                    f"server backend CPU {1000 * cpu / args.batches:.3f} ms per statement"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
