"""CPU per request of the 16-client mix's pages, in-process (no network, no queueing).

    python -m bench.bench_mix_cpu --url sqlite:////tmp/scale/copy.db [--rounds 20]

bench_mix.py measures the mix over HTTP, where 16 clients queue behind one interpreter: its
p50 is about 16 / throughput, so what moves it is the CPU each page costs. This prints that
cost (this process's CPU time per request through the Flask test client, after a warm-up
round, so the first request's template compilation is not counted) per page of the mix and
for the mix as a whole, which other jobs on a shared machine inflate far less than the wall
clock. Compare two versions of the code on the same database copy in the same minutes. Not a
test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from bench.bench_mix import MIX
from bench.bench_scale import _pct, _prepare, create_app, login


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    _prepare(a.url)
    app = create_app(test_config={"SECRET_KEY": "bench-" + "x" * 40, "NYUTAI_DATABASE_URL": a.url})
    client = login(app, "bench")
    for _ in range(3):  # warm-up: templates compiled, statements cached
        for path in MIX:
            client.get(path)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {a.url}, {a.rounds} rounds")
    print(f"{'page':35s} {'CPU p50 ms':>10s} {'CPU p95 ms':>10s}")
    total: list[float] = []
    per: dict[str, list[float]] = {p: [] for p in MIX}
    for _ in range(a.rounds):
        for path in MIX:  # interleaved, as the clients of the mix ask
            c0 = time.process_time()
            resp = client.get(path)
            per[path].append((time.process_time() - c0) * 1000)
            if resp.status_code != 200:
                raise SystemExit(f"{path}: HTTP {resp.status_code}")
    for path, xs in per.items():
        total += xs
        print(f"{path:35s} {statistics.median(xs):10.1f} {_pct(xs, 0.95):10.1f}")
    print(f"{'mix (mean)':35s} {statistics.fmean(total):10.1f}")


if __name__ == "__main__":
    main()
