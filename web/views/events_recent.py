"""The guard's event search: the event log's filters and pages, limited to the last 24 hours.

Guards answer "did X come in a moment ago?" at the desk; the full history stays with
managers and auditors (events.view). The limit is applied on the server whatever the
``from`` argument says.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from db.types import utcnow
from web import eventquery
from web.i18n import site_zone
from web.roles import requires
from web.views.events import render_event_log

bp = Blueprint("events_recent", __name__, url_prefix="/events/recent")

WINDOW = timedelta(hours=24)


@bp.route("/")
@requires("events.recent")
def index() -> ResponseReturnValue:
    f = eventquery.parse_filter(request.args, site_zone())
    earliest = utcnow() - WINDOW
    if f.since is None or f.since < earliest:
        f.since = earliest
    return render_event_log(f, endpoint="events_recent.index", recent_only=True)
