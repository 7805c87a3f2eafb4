"""The guard's event search: the event log's filters and pages, limited to the last 24 hours.

Guards answer "did X come in a moment ago?" at the desk; the full history stays with
managers and auditors (events.view). The limit is applied on the server whatever the
``from`` argument says.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from db.controllers import controller_codes
from db.models import Area, Decision, Door
from db.types import utcnow
from domain.reasons import Reason
from web import eventquery
from web.db import get_session
from web.i18n import site_zone
from web.roles import requires

bp = Blueprint("events_recent", __name__, url_prefix="/events/recent")

WINDOW = timedelta(hours=24)


@bp.route("/")
@requires("events.recent")
def index() -> ResponseReturnValue:
    db = get_session()
    f = eventquery.parse_filter(request.args, site_zone())
    earliest = utcnow() - WINDOW
    if f.since is None or f.since < earliest:
        f.since = earliest
    page = eventquery.page(
        db, f, after=request.args.get("after"), before=request.args.get("before")
    )
    return render_template(
        "events.html",
        page=page,
        f=f,
        areas=db.scalars(select(Area).order_by(Area.code)).all(),
        doors=db.scalars(select(Door).order_by(Door.code)).all(),
        controllers=controller_codes(db),
        decisions=list(Decision),
        reasons=list(Reason),
        endpoint="events_recent.index",
        recent_only=True,
    )
