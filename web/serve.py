"""Running the console: waitress (pure Python, production-capable, threaded)."""

from __future__ import annotations

import logging

from domain.config import SiteConfig

log = logging.getLogger(__name__)

# One process, 8 worker threads: at most 4 hold live streams (web.views.live.MAX_STREAMS;
# a stream sleeps between its 1 s polls), the other 4 serve pages. A page is CPU-bound Python
# (templates, row building): under the GIL one process uses one core however many threads it
# has, so page threads beyond a few only queue inside the interpreter and add jitter.
# Measured with bench/bench_mix.py (16 signed-in clients on the event log/dashboard/occupancy
# mix, 2-core machine): 4 page threads p99 430 ms, 8 threads 585 ms, 16 threads 784 ms, same
# run. More throughput needs more processes, not more threads: a site with a free core runs a
# second `nyutai web --port ...` behind its proxy (sessions, CSRF, lockout and
# BackgroundDuties work across processes: tests/test_web_processes.py).
THREADS = 8


def serve(cfg: SiteConfig, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the console until interrupted (``nyutai web`` and ``nyutai demo`` call this)."""
    from waitress import serve as waitress_serve

    from db.files import keep_files_private
    from web import create_app
    from web.notify import BackgroundDuties

    keep_files_private()  # the secret key and the SQLite database it may create are 0600
    app = create_app(cfg)
    host = host or cfg.web.host
    port = port if port is not None else cfg.web.port
    # notifications (queue, retries), first-entry scan, expired commands: off the requests
    duties = BackgroundDuties(cfg, app.extensions["nyutai_sessions"])
    duties.start()
    log.info("web console on http://%s:%d/", host, port)
    try:
        waitress_serve(app, host=host, port=port, threads=THREADS, ident="nyutai")
    finally:
        duties.stop()
