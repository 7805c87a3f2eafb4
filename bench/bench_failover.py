"""The failover gap: last commit on the old primary to first commit on the promoted standby.

    python bench/bench_failover.py [--rounds 3] [--tap-ms 20] [--react-ms 0]

Each round starts a primary and a streaming standby on loopback (tests.pgpair, synchronous
replication, ``track_commit_timestamp = on``), a real ``nyutai controller`` process whose
entry reader ``sr-in`` is a serial reader on a loopback socket, and presents a new card every
``--tap-ms``. After a steady period the primary is stopped (``pg_ctl stop -m immediate``),
the standby is promoted ``--react-ms`` later (the administrator's or a failover manager's
reaction time; 0 = at once) and the taps go on until every row is on the new primary.

Figures, from the servers' own commit timestamps of the event rows (``pg_xact_commit_
timestamp(xmin)``, replicated with the rows):

- **gap**: the largest interval between consecutive commits across the switch (the last
  commit the old primary made to the first the new one made), beside the **baseline**: the
  largest interval between consecutive commits during the steady period of the same round;
- the part of the gap that is nyutai's own (gap minus the time from the stop to the end of
  ``pg_ctl promote``): how long the controller took to reach the new primary and write;
- taps lost or doubled (must be 0).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from domain.config import load_config  # noqa: E402
from nyutai.demo import seed_people  # noqa: E402
from tests import pgpair  # noqa: E402
from tests.processes import start, wait_for  # noqa: E402
from tests.test_failover import card, site_file  # noqa: E402

STEADY_TAPS = 150
AFTER_TAPS = 150


def one_round(tap_s: float, react_s: float) -> dict[str, float]:
    with pgpair.PgPair(commit_timestamps=True) as pair, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = pair.url()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(60)
        site = site_file(work, url, listener.getsockname()[1], pgpair.free_port())
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as s:
            seed_people(s, load_config(site))
        ctl = start(["controller", "--config", str(site)], work / "controller.log")
        try:
            reader, _ = listener.accept()
            # the reader clears its input when its port is open (docs/readers/serial.md): a
            # card sent at once after the connection could be discarded; wait until it is open
            log = work / "controller.log"
            wait_for("the reader", lambda: "reader sr-in online" in log.read_text(), 60, ctl)
            n = 0
            for _ in range(STEADY_TAPS):
                reader.sendall(card(n).encode() + b"\r\n")
                n += 1
                time.sleep(tap_s)
            stop_wall = datetime.now().astimezone()
            stop_t = time.monotonic()
            pair.stop_primary()
            promote_at = stop_t + react_s
            promoted_t: float | None = None
            for _ in range(AFTER_TAPS):
                if promoted_t is None and time.monotonic() >= promote_at:
                    pair.promote_standby()
                    promoted_t = time.monotonic()
                reader.sendall(card(n).encode() + b"\r\n")
                n += 1
                time.sleep(tap_s)
            if promoted_t is None:
                pair.promote_standby()
                promoted_t = time.monotonic()
            cards = [card(i) for i in range(n)]
            deadline = time.monotonic() + 120
            while True:
                try:
                    with session_scope(factory) as s:
                        rows = s.execute(
                            text(
                                "SELECT upper(raw_card_id), pg_xact_commit_timestamp(xmin) "
                                "FROM events WHERE upper(raw_card_id) = ANY(:c) ORDER BY seq"
                            ),
                            {"c": cards},
                        ).all()
                    if len(rows) >= n:
                        break
                except Exception:  # the new primary may not answer yet
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(rows)} of {n} taps written")
                time.sleep(0.2)
            got = [r[0] for r in rows]
            times = sorted({r[1] for r in rows})
            before = [t for t in times if t < stop_wall]
            steady = max(
                (b - a).total_seconds() for a, b in zip(before[1:], before[2:], strict=False)
            )
            gap = max((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
            reader.close()
            return {
                "gap": gap,
                "baseline": steady,
                "promote": promoted_t - stop_t,
                "own": gap - (promoted_t - stop_t),
                "lost": float(len(set(cards) - set(got))),
                "doubled": float(len(got) - len(set(got))),
                "in_order": float(got == cards),
            }
        finally:
            ctl.terminate()
            ctl.wait(20)
            listener.close()
            engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tap-ms", type=float, default=20.0)
    ap.add_argument("--react-ms", type=float, default=0.0)
    args = ap.parse_args()
    reason = pgpair.why_not()
    if reason:
        sys.exit(f"cannot run: {reason}")
    results = []
    for i in range(args.rounds):
        r = one_round(args.tap_ms / 1000, args.react_ms / 1000)
        results.append(r)
        print(
            f"round {i + 1}: gap {r['gap'] * 1000:.0f} ms (steady-state largest interval "
            f"{r['baseline'] * 1000:.0f} ms); stop->promoted {r['promote'] * 1000:.0f} ms, "
            f"nyutai's own part {r['own'] * 1000:.0f} ms; lost {r['lost']:.0f}, doubled "
            f"{r['doubled']:.0f}, order kept {bool(r['in_order'])}",
            flush=True,
        )
    med = {k: statistics.median(r[k] for r in results) for k in ("gap", "baseline", "own")}
    print(
        f"median of {args.rounds}: failover gap {med['gap'] * 1000:.0f} ms beside a "
        f"steady-state largest interval of {med['baseline'] * 1000:.0f} ms "
        f"(ratio {med['gap'] / med['baseline']:.1f}x); nyutai's own part "
        f"{med['own'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
