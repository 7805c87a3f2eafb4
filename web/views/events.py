"""The event log: filters, keyset pages, streamed CSV export."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import select

from db.controllers import controller_codes
from db.models import Area, Decision, Door
from db.types import utcnow
from domain.reasons import Reason
from web import eventquery
from web.audit import audit
from web.db import get_session, session_factory
from web.i18n import site_zone
from web.roles import requires

bp = Blueprint("events", __name__, url_prefix="/events")


@bp.route("/")
@requires("events.view")
def index() -> ResponseReturnValue:
    return render_event_log(eventquery.parse_filter(request.args, site_zone()))


def render_event_log(f: eventquery.EventFilter, **page_args: object) -> ResponseReturnValue:
    """One page of the event log for the filter ``f``: the full log here, the guard's last
    24 hours in web.views.events_recent (``page_args`` name its endpoint)."""
    db = get_session()
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
        **page_args,
    )


@bp.route("/export.csv")
@requires("events.export")
def export() -> ResponseReturnValue:
    zone = site_zone()
    f = eventquery.parse_filter(request.args, zone)
    locale = str(get_locale() or "ja")
    audit("events.export", "events", None, after={"filter": dict(request.args)})
    get_session().commit()

    def generate() -> Iterator[str]:
        # its own session: the export outlives nothing but must not share the request's
        with session_factory()() as db:
            yield from eventquery.csv_stream(db, f, locale, zone)

    name = f"nyutai-events-{utcnow().astimezone(zone):%Y%m%d-%H%M%S}.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
