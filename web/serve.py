"""Running the console: waitress (pure Python, production-capable, threaded), in one process
or in several that share one listening socket."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from domain.config import SiteConfig

log = logging.getLogger(__name__)

# Per process, 8 worker threads: at most 4 hold live streams (web.views.live.MAX_STREAMS;
# a stream sleeps between its 1 s polls), the other 4 serve pages. A page is CPU-bound Python
# (templates, row building): under the GIL one process uses one core however many threads it
# has, so page threads beyond a few only queue inside the interpreter and add jitter.
# More throughput needs more processes, not more threads: `[web] processes` (or `nyutai web
# --processes N`) runs N of them on one socket, one per core (README "Measured": 16 clients
# on 1,000,000 people / 10,000,000 events, 2 cores: one process p99 461-584 ms, two 208-280).
# Sessions, CSRF, lockout and BackgroundDuties work across processes
# (tests/test_web_processes.py).
THREADS = 8
RESTART_DELAY_SECONDS = 1.0
# a console process that exits this soon after its start is not restarted: the whole
# console stops with an error instead of failing again every second
START_GRACE_SECONDS = 5.0


def serve(
    cfg: SiteConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    processes: int | None = None,
    listen_fd: int | None = None,
) -> None:
    """Serve the console until interrupted (``nyutai web`` and ``nyutai demo`` call this).
    ``listen_fd``: a listening socket inherited from the parent of several processes."""
    host = host or cfg.web.host
    port = port if port is not None else cfg.web.port
    processes = processes or cfg.web.processes
    if listen_fd is None and processes > 1:
        _supervise(cfg, host, port, processes)
        return
    _serve_one(cfg, host, port, listen_fd)


def _serve_one(cfg: SiteConfig, host: str, port: int, listen_fd: int | None) -> None:
    from waitress import serve as waitress_serve

    from db.files import keep_files_private
    from web import create_app
    from web.notify import BackgroundDuties

    keep_files_private()  # the secret key and the SQLite database it may create are 0600
    app = create_app(cfg)
    # notifications (queue, retries), first-entry scan, expired commands: off the requests
    duties = BackgroundDuties(cfg, app.extensions["nyutai_sessions"])
    duties.start()
    try:
        if listen_fd is not None:
            sock = socket.socket(fileno=listen_fd)
            waitress_serve(app, sockets=[sock], threads=THREADS, ident="nyutai")
        else:
            log.info("web console on http://%s:%d/", host, port)
            waitress_serve(app, host=host, port=port, threads=THREADS, ident="nyutai")
    finally:
        duties.stop()


def _supervise(cfg: SiteConfig, host: str, port: int, processes: int) -> None:
    """Listen once, run ``processes`` consoles on the socket (the kernel hands each new
    connection to one of them), start again any that dies, stop them all on SIGTERM/SIGINT."""
    listener = socket.create_server((host, port), backlog=1024)
    fd = listener.fileno()
    cmd = [sys.executable, "-m", "nyutai", "web", "--config", str(cfg.path)]
    cmd += ["--listen-fd", str(fd)]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, pass_fds=(fd,))

    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = [spawn() for _ in range(processes)]
    started = [time.monotonic()] * processes
    log.info("web console on http://%s:%d/ (%d processes)", host, port, processes)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if child.poll() is None or stopping:
                    continue
                if time.monotonic() - started[i] < START_GRACE_SECONDS:
                    # it could not even start (database, schema, site file): no use retrying
                    raise SystemExit(f"console_failed: a console process exited at start "
                                     f"({child.returncode}); see its error above")  # fmt: skip
                log.error(
                    "console process %d exited (%s): starting another", child.pid,
                    child.returncode,
                )  # fmt: skip
                time.sleep(RESTART_DELAY_SECONDS)
                children[i], started[i] = spawn(), time.monotonic()
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
