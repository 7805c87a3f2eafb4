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

    from web import create_app

    app = create_app(cfg)
    host = host or cfg.web.host
    port = port if port is not None else cfg.web.port
    log.info("web console on http://%s:%d/", host, port)
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="nyutai")
