"""Running the console: waitress (pure Python, production-capable, threaded)."""

from __future__ import annotations

import logging

from domain.config import SiteConfig

log = logging.getLogger(__name__)

# the dashboard polls, enrolment pages refresh, and every console page holds one live stream
# (web.views.live, at most MAX_STREAMS = 8 at once): 16 workers leave 8 for pages
THREADS = 16


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
