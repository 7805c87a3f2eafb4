"""Staff CSV import and person search on a site-sized people table.

    python -m bench.people_import [--people 1000000] [--rows 100000]

Builds ``--people`` staff with bench.scale_data (no events), then imports a cp932 file of
``--rows`` staff as Excel writes it: half are existing employees (E0000001...: their
organisation changes), half are new, each with a card. Prints the preview and the apply
time and the peak Python memory of each (tracemalloc), then the person search time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from bench.scale_data import generate
from db.engine import make_engine, make_session_factory
from db.models import Person
from db.search import name_filter
from web.people_import import import_people

HEADER = "社員番号,氏名,フリガナ,所属,取扱者指定,研修受講日,カードID"


def staff_file(rows: int, existing: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        if i % 2 == 0 and i // 2 + 1 <= existing:  # an existing employee, moved
            n = i // 2 + 1
            lines.append(f"E{n:07d},既存 {n},キソン,異動先{i % 7}課,1,2026/1/15,")
        else:
            n = 10_000_000 + i
            lines.append(f"N{n:08d},新規 {i},シンキ,新設課,1,2026/1/15,felica:02{n:014X}")
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'nyutai.db'}"
        t = time.perf_counter()
        generate(url, people=args.people, events=0)
        print(f"built {args.people} people in {time.perf_counter() - t:.1f} s")
        data = staff_file(args.rows, args.people)
        factory = make_session_factory(make_engine(url))
        for apply in (False, True):
            tracemalloc.start()
            t = time.perf_counter()
            with factory() as db:
                out = import_people(db, data, date(2026, 12, 1), apply=apply)
            took = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            label = "apply (check + write)" if apply else "preview"
            print(
                f"{label}: {args.rows} rows in {took:.1f} s ({args.rows / took:,.0f} rows/s), "
                f"peak Python memory {peak / 1e6:.1f} MB; created {out.created}, "
                f"updated {out.updated}, problems {out.problem_rows}, applied {out.applied}"
            )
        with factory() as db:
            total = db.scalar(select(func.count()).select_from(Person))
            for q in ("佐藤花子", "さとう", "新規 99"):
                t = time.perf_counter()
                found = db.scalars(
                    select(Person.id)
                    .where(name_filter(db.get_bind().dialect.name, q))
                    .order_by(Person.name)
                    .limit(500)
                ).all()
                ms = (time.perf_counter() - t) * 1000
                print(f"search {q!r} over {total:,} people: {len(found)} shown, {ms:.0f} ms")


if __name__ == "__main__":
    main()
