"""Several controllers on one PostgreSQL (issue 11): 4 controllers x 16 doors, all at once.

    NYUTAI_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python -m bench.bench_multi_controller [--controllers 4] [--doors 16] [--burst 2000]

A fresh database is made on that server (dropped afterwards) with one whole-site file:
``--controllers`` controllers, each running ``--doors`` doors (no door contact: a grant is a
crossing at once, so presence is written and shared through the change feed as in an area
spanning controllers; the doors of every controller are spread over two areas). Each
controller is its own process (``--worker``), as on site. Every controller puts ``--burst``
presentations of random staff cards on its doors' readers at once (in and out mixed), after
``--warmup`` taps one at a time (a controller that has been running, not a cold one);
measured per process: presentations/s until the last reader's feedback (given after the
commit), and queue-to-commit (the recorder's own clock). With ``--closed`` each door presents
its next card only when its reader gave feedback on the last (a door serves one person at a
time): at most ``--doors`` presentations in flight per controller, and the time from
presentation to feedback is printed too.

Printed: one controller alone (the baseline, same database, same run: run before and after
the others, the faster of the two), then all controllers at once: aggregate presentations/s
(all presentations / wall time from the common start to the last feedback) beside the
baseline, their ratio, and the p99 queue-to-commit of each.
Goal: aggregate >= 3x one controller, p99 <= 50 ms. The machine may be shared: read the ratio.

On site each controller is its own small box near its doors. ``--cpu-each F`` gives every
controller process a budget of F cores (a Linux CPU cgroup, root only), alone and together,
so that a machine with fewer cores than controllers can still show whether the controllers
slow each other through anything but the database. The PostgreSQL server is not limited.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEOPLE = 2_000


def card(i: int) -> str:
    return f"0B{i:014X}"


def site_file(path: Path, url: str, controllers: int, doors: int, shared: bool = False) -> None:
    """Each controller's doors in two areas of its own (buildings), or with ``shared`` in
    two areas every controller has doors in (every crossing matters to every controller)."""
    lines = [
        "[site]",
        'name = "bench"',
        "[database]",
        f'url = "{url}"',
        "[controller]",
        'id = "c0"',
        'gpio_backend = "sim"',
    ]
    groups = [""] if shared else [f"c{c}-" for c in range(controllers)]
    for g in groups:
        for side in ("north", "south"):
            lines += [f"[areas.{g}{side}]", f'name = "{g}{side}"', 'antipassback = "alert"']
    for c in range(controllers):
        for d in range(doors):
            code = f"c{c}-d{d:02d}"
            lines += [
                f"[doors.{code}]",
                f'area = "{"" if shared else f"c{c}-"}{"north" if d % 2 == 0 else "south"}"',
                f'name = "{code}"',
                f'controller = "c{c}"',
                f'entry_reader = "{code}-in"',
                f'exit_reader = "{code}-out"',
                f"[readers.{code}-in]",
                f'url = "sim:{code}-in"',
                f"[readers.{code}-out]",
                f'url = "sim:{code}-out"',
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed(site: Path) -> None:
    from sqlalchemy import select

    from controller.site import sync_site
    from db.engine import make_engine, make_session_factory, session_scope
    from db.migrate import upgrade
    from db.models import Area, Authorization, AuthorizationState, Credential, Person, Training
    from domain.config import load_config

    cfg = load_config(site)
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        sync_site(s, cfg)
        areas = list(s.scalars(select(Area)))
        today = datetime.now(UTC).astimezone(cfg.zone).date()
        for i in range(1, PEOPLE + 1):
            p = Person(name=f"staff {i}", designated=True)
            s.add(p)
            s.flush()
            s.add(Credential(person_id=p.id, technology="felica", card_id=card(i)))
            s.add(Training(person_id=p.id, course="c", completed_on=today - timedelta(days=30)))
            for a in areas:
                s.add(
                    Authorization(
                        person_id=p.id,
                        area_id=a.id,
                        state=AuthorizationState.APPROVED,
                        approved_at=datetime.now(UTC),
                    )
                )
    engine.dispose()


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far, by thread name (Linux /proc; the
    numbered threads of a kind, such as the simulated readers, summed under one name)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(task.name), "other").rstrip("0123456789_-").split(" (")[0] or "other"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def server_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL servers on this machine: their processes
    alive now, and the backends that ended (counted in their postmaster's children's time,
    once it reaped them). Linux /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, list[str]]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            name, _, rest = (proc / "stat").read_text().partition(") ")
        except OSError:  # ended meanwhile
            continue
        if name.endswith("(postgres"):
            fields = rest.split()
            procs[int(proc.name)] = (int(fields[1]), fields)
    total = 0
    for parent, fields in procs.values():
        total += int(fields[11]) + int(fields[12])
        if parent not in procs:  # a postmaster: its reaped children's time too
            total += int(fields[13]) + int(fields[14])
    return total / tick


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


# --- one controller process ------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Start controller ``--id``, say ready, wait for the go file, present ``--burst``."""
    import logging

    from bench.bench_controller_scale import Probe, present
    from controller.daemon import Controller, controller_engine
    from db.engine import make_session_factory
    from domain.config import load_config
    from hardware.sim import SimBackend

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.site)
    engine = controller_engine(cfg.database_url, pool_size=10)
    ctl = Controller(
        cfg,
        session_factory=make_session_factory(engine),
        backend=SimBackend(),
        controller_id=args.id,
    )
    ctl.start()
    probe = Probe(ctl)
    readers = [r for r in ctl.readers]
    rng = random.Random(args.id)
    cards = [card(rng.randint(1, PEOPLE)) for _ in range(args.burst)]
    where = [rng.choice(readers) for _ in range(args.burst)]
    # a running controller, not a cold one: a trickle of taps first (statements prepared,
    # caches filled), one at a time, not measured
    for i in range(args.warmup):
        present(ctl, rng.choice(readers), card(rng.randint(1, PEOPLE)))
        probe.wait_count(i + 1, timeout=60)
    with probe.lock:
        probe.count = 0
    print("ready", flush=True)
    go = Path(args.go)
    while not go.exists():
        time.sleep(0.001)
    ctl.recorder.commit_seconds.clear()
    ctl.recorder.batch_sizes.clear()
    start = time.time()
    cpu0 = time.process_time()  # every thread of this controller process
    threads0 = thread_cpu()
    t0 = time.perf_counter()
    import faulthandler

    faulthandler.dump_traceback_later(180, exit=True)  # a hang shows its threads' stacks
    taps: list[float] = []
    if args.closed:
        taps = closed_loop(ctl, rng, args.burst)
    else:
        for r, c in zip(where, cards, strict=True):
            present(ctl, r, c)
        probe.wait_count(args.burst, timeout=600)
    faulthandler.cancel_dump_traceback_later()
    took = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu().items()}
    end = time.time()
    q2c = list(ctl.recorder.commit_seconds)
    ctl.stop()
    engine.dispose()
    print(
        json.dumps(
            {
                "id": args.id,
                "n": args.burst,
                "start": start,
                "end": end,
                "rate": args.burst / took,
                "p50": pct(q2c, 50),
                "p99": pct(q2c, 99),
                "tap_p50": pct(taps, 50),
                "tap_p99": pct(taps, 99),
                "commits": len(ctl.recorder.batch_sizes),
                "cpu": cpu,
                "threads": threads,
            }
        ),
        flush=True,
    )


def closed_loop(ctl: Any, rng: random.Random, n: int, timeout: float = 600) -> list[float]:
    """``n`` presentations, every door presenting its next card as soon as its reader gave
    feedback on the last (a door serves one person at a time, so a controller of 16 doors
    has at most 16 presentations in flight): returns presentation-to-feedback seconds."""
    from bench.bench_controller_scale import present
    from readers import Feedback

    final = {Feedback.GRANTED, Feedback.DENIED, Feedback.WAIT}
    doors = sorted({r.rsplit("-", 1)[0] for r in ctl.readers})
    sent: dict[str, float] = {}
    taps: list[float] = []
    issued = 0
    done = threading.Event()
    lock = threading.Lock()
    inner = ctl.feedback

    def next_at(door: str) -> None:
        nonlocal issued
        issued += 1
        sent[door] = time.perf_counter()
        present(ctl, f"{door}-{rng.choice(('in', 'out'))}", card(rng.randint(1, PEOPLE)))

    def feedback(reader_id: str, kind: Any) -> None:
        inner(reader_id, kind)
        door = reader_id.rsplit("-", 1)[0]
        with lock:
            if kind not in final or door not in sent:
                return
            taps.append(time.perf_counter() - sent.pop(door))
            if len(taps) == n:
                done.set()
            elif issued < n:
                next_at(door)

    ctl.feedback = feedback
    with lock:
        for door in doors[:n]:
            next_at(door)
    if not done.wait(timeout):
        raise TimeoutError(f"{len(taps)} of {n} presentations decided")
    ctl.feedback = inner
    return taps


# The budget is enforced per period: a process that used its share stops until the period
# ends (up to 13 ms of 20 at 0.35 cores). A small box near the doors runs all the time at a
# lower speed; a shorter period (--cpu-period-ms) comes closer to that.
CPU_PERIOD_US = 20_000


def cpu_box(name: str, pid: int, cores: float, period_us: int = CPU_PERIOD_US) -> Path:
    """Put ``pid`` in a CPU cgroup of its own limited to ``cores`` (v2 ``cpu.max`` or v1
    ``cpu.cfs_quota_us``); returns the cgroup's directory, to be removed after."""
    quota = max(1_000, int(cores * period_us))
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists() and "cpu" in v2.read_text().split():
        box = Path("/sys/fs/cgroup") / name
        box.mkdir(exist_ok=True)
        (box / "cpu.max").write_text(f"{quota} {period_us}")
    else:
        box = Path("/sys/fs/cgroup/cpu") / name
        box.mkdir(exist_ok=True)
        (box / "cpu.cfs_period_us").write_text(str(period_us))
        (box / "cpu.cfs_quota_us").write_text(str(quota))
    (box / "cgroup.procs").write_text(str(pid))
    return box


def throttled(box: Path) -> float:
    """Seconds the cgroup's processes waited for their budget."""
    for line in (box / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "throttled_usec":
            return int(value) / 1e6
        if key == "throttled_time":
            return int(value) / 1e9
    return float("nan")


def run(
    site: Path,
    ids: list[str],
    burst: int,
    tmp: Path,
    cpu_each: float = 0.0,
    warmup: int = 0,
    period_us: int = CPU_PERIOD_US,
    closed: bool = False,
) -> list[dict[str, Any]]:
    go = tmp / f"go-{'-'.join(ids)}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.bench_multi_controller",
                "--worker",
                "--id",
                cid,
                "--site",
                str(site),
                "--burst",
                str(burst),
                "--go",
                str(go),
                "--warmup",
                str(warmup),
                *(["--closed"] if closed else []),
            ],
            stdout=subprocess.PIPE,
            stderr=(tmp / f"{cid}.err").open("ab"),
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        for cid in ids
    ]
    boxes = [
        cpu_box(f"nyutai-bench-{os.getpid()}-{c}", p.pid, cpu_each, period_us)
        for c, p in zip(ids, procs, strict=True)
        if cpu_each
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a controller did not start: {line!r}")
    go.touch()
    out = []
    for p in procs:
        assert p.stdout is not None
        data = p.stdout.read()
        p.wait(600)
        out.append(json.loads(data.strip().splitlines()[-1]))
    for r, box in zip(out, boxes, strict=False):  # no boxes without --cpu-each
        r["throttled"] = throttled(box)
        box.rmdir()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--id", default="c0")
    ap.add_argument("--site", default="")
    ap.add_argument("--go", default="")
    ap.add_argument("--controllers", type=int, default=4)
    ap.add_argument("--doors", type=int, default=16)
    ap.add_argument("--burst", type=int, default=2_000)
    ap.add_argument(
        "--warmup", type=int, default=100, help="taps one at a time before the burst, not measured"
    )
    ap.add_argument(
        "--closed",
        action="store_true",
        help="each door presents its next card only after its last one's feedback "
        "(--burst presentations per controller in all), instead of all at once",
    )
    ap.add_argument(
        "--shared", action="store_true", help="every controller's doors in the same two areas"
    )
    ap.add_argument(
        "--cpu-each",
        type=float,
        default=0.0,
        help="cores each controller process may use (a CPU cgroup; root): one box per controller",
    )
    ap.add_argument(
        "--cpu-period-ms",
        type=float,
        default=CPU_PERIOD_US / 1000,
        help="the period over which --cpu-each is enforced (shorter: shorter stops, more often)",
    )
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    from bench.pg import scratch_database

    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(os.environ.get("NYUTAI_BENCH_LOGS") or tmp_s)
        site = tmp / "site.toml"
        site_file(site, url, args.controllers, args.doors, args.shared)
        print(
            "areas: " + ("two, spanning every controller" if args.shared else "two per controller")
        )
        seed(site)
        ids = [f"c{i}" for i in range(args.controllers)]
        if args.cpu_each:
            print(
                f"each controller process limited to {args.cpu_each:g} cores (cgroup, "
                f"enforced per {args.cpu_period_ms:g} ms)"
            )
        period = int(args.cpu_period_ms * 1000)
        # One controller alone before and after all of them; the faster is the baseline,
        # so a cold first run cannot flatter the ratio.
        opts = (args.burst, tmp, args.cpu_each, args.warmup, period, args.closed)
        server0 = server_cpu()
        before = run(site, ids[:1], *opts)[0]
        server1 = server_cpu()
        together = run(site, ids, *opts)
        server2 = server_cpu()
        after = run(site, ids[:1], *opts)[0]
        alone = max(before, after, key=lambda r: r["rate"])
        if args.closed:
            print("each door presents its next card after the last one's feedback")
        print(f"one controller alone, before and after: {before['rate']:,.0f}/s, "
              f"{after['rate']:,.0f}/s")  # fmt: skip
        span = max(r["end"] for r in together) - min(r["start"] for r in together)
        agg = sum(r["n"] for r in together) / span
        print(
            f"one controller alone ({args.doors} doors, {args.burst} presentations "
            f"{'one in flight per door' if args.closed else 'at once'}): "
            f"{alone['rate']:,.0f}/s, queue-to-commit p50 {alone['p50'] * 1000:.1f} ms / "
            f"p99 {alone['p99'] * 1000:.1f} ms"
        )
        print(
            f"{args.controllers} controllers x {args.doors} doors at once: aggregate "
            f"{agg:,.0f}/s = {agg / alone['rate']:.2f}x one controller (goal >= 3x); "
            "queue-to-commit p99 per controller: "
            + ", ".join(f"{r['id']} {r['p99'] * 1000:.1f} ms" for r in together)
            + " (goal <= 50 ms)"
        )
        if args.closed:
            print(
                "presentation to feedback: alone p50 "
                f"{alone['tap_p50'] * 1000:.1f} / p99 {alone['tap_p99'] * 1000:.1f} ms; "
                "together p99 "
                + ", ".join(f"{r['id']} {r['tap_p99'] * 1000:.1f} ms" for r in together)
            )
        per = 1000 * alone["cpu"] / alone["n"]
        per_all = 1000 * sum(r["cpu"] for r in together) / sum(r["n"] for r in together)
        print(
            f"controller CPU per 1,000 presentations: alone {per:.2f} s, "
            f"{args.controllers} at once {per_all:.2f} s (the same figure would mean the "
            "controllers only share cores; more means work caused by the others: shared "
            "presence, database waits)"
        )
        print(
            "presentations per group commit: alone "
            f"{alone['n'] / max(1, alone['commits']):.1f}, {args.controllers} at once "
            + ", ".join(f"{r['n'] / max(1, r['commits']):.1f}" for r in together)
        )
        print(
            "database server CPU per 1,000 presentations (whole runs, start-up included): "
            f"first alone {1000 * (server1 - server0) / before['n']:.2f} s, "
            f"{args.controllers} at once "
            f"{1000 * (server2 - server1) / sum(r['n'] for r in together):.2f} s"
        )
        by_thread = sorted(alone["threads"].items(), key=lambda kv: -kv[1])
        print(
            "  of which, alone, by thread: "
            + ", ".join(f"{k} {1000 * v / alone['n']:.2f} s" for k, v in by_thread if v > 0)
        )
        all_threads: dict[str, float] = {}
        for r in together:
            for k, v in r["threads"].items():
                all_threads[k] = all_threads.get(k, 0.0) + v
        n_all = sum(r["n"] for r in together)
        print(
            f"  {args.controllers} at once, by thread: "
            + ", ".join(
                f"{k} {1000 * v / n_all:.2f} s"
                for k, v in sorted(all_threads.items(), key=lambda kv: -kv[1])
                if v > 0
            )
        )
        if args.cpu_each:
            print(
                "time waiting for the CPU budget: alone "
                f"{alone['throttled']:.2f} s, together "
                + ", ".join(f"{r['id']} {r['throttled']:.2f} s" for r in together)
            )
        print(f"  (cores on this machine: {os.cpu_count()}; other work may share them)")


if __name__ == "__main__":
    main()
