"""Read-only JSON API for integrations (per-operator bearer tokens, same role checks)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from db.models import Alarm, AlarmState, Person, PersonKind, Presence
from web import eventquery
from web.audit import audit
from web.db import get_session
from web.i18n import site_zone
from web.ids import parse_id
from web.roles import requires

bp = Blueprint("api", __name__, url_prefix="/api/v1")

OCCUPANCY_PAGE = 500


def _iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None else None


@bp.route("/events")
@requires("events.view")
def events() -> ResponseReturnValue:
    f = eventquery.parse_filter(request.args, site_zone())
    if f.errors:
        return {"error": "bad filter", "details": f.errors}, 400
    limit = request.args.get("limit", "")
    size = parse_id(limit) if limit else eventquery.PAGE_SIZE
    if size is None:
        return {"error": "bad filter", "details": ["limit: " + _("expected a number")]}, 400
    rows, cursor = eventquery.api_page(get_session(), f, after=request.args.get("after"), size=size)
    _audit_read("api.events", "events", len(rows), {"filter": dict(request.args)})
    return {"events": rows, "next": cursor}


def _audit_read(action: str, target: str, rows: int, extra: dict[str, Any] | None = None) -> None:
    """Personal data read through the API is audited like a CSV export: who (the token's
    operator and the token), what (the filter), how much."""
    from flask_login import current_user

    audit(
        action,
        target,
        None,
        after={"api_token_id": current_user.token_id, "rows": rows, **(extra or {})},
    )
    get_session().commit()


@bp.route("/occupancy")
@requires("live.view")
def occupancy() -> ResponseReturnValue:
    """Who is inside, in pages of ``limit`` (default and at most 500) by presence id;
    ``next`` is the ``after`` value of the following page (Core rows, bounded at any size)."""
    limit = request.args.get("limit", "")
    size = parse_id(limit) if limit else OCCUPANCY_PAGE
    after = parse_id(request.args.get("after", "") or "0")
    if size is None or after is None:
        return {"error": "bad filter", "details": ["limit/after: " + _("expected a number")]}, 400
    size = max(1, min(size, OCCUPANCY_PAGE))
    q = (
        select(
            Presence.id,
            Presence.person_id,
            Person.name,
            Person.kind,
            Presence.area_id,
            Presence.entered_at,
            Presence.escort_person_id,
            Presence.visit_id,
        )
        .join(Person, Person.id == Presence.person_id)
        .where(Presence.id > after)
        .order_by(Presence.id)
        .limit(size + 1)
    )
    area = parse_id(request.args.get("area", ""))
    if area is not None:
        q = q.where(Presence.area_id == area)
    rows = get_session().execute(q).all()
    more = len(rows) > size
    rows = rows[:size]
    inside = [
        {
            "person_id": r.person_id,
            "person": r.name,
            "visitor": r.kind == PersonKind.VISITOR,
            "area_id": r.area_id,
            "entered_at": _iso(r.entered_at),
            "escort_person_id": r.escort_person_id,
            "visit_id": r.visit_id,
        }
        for r in rows
    ]
    _audit_read("api.occupancy", "presence", len(inside))
    return {"inside": inside, "next": rows[-1].id if rows and more else None}


@bp.route("/alarms")
@requires("alarms.view")
def alarms() -> ResponseReturnValue:
    q = select(Alarm).order_by(Alarm.raised_at.desc()).limit(200)
    if request.args.get("open") in ("1", "true"):
        q = q.where(Alarm.state != AlarmState.CLEARED)
    return {
        "alarms": [
            {
                "id": a.id,
                "kind": a.kind,
                "state": a.state,
                "silent": a.silent,
                "door_id": a.door_id,
                "area_id": a.area_id,
                "raised_at": _iso(a.raised_at),
                "acknowledged_at": _iso(a.acknowledged_at),
                "ack_comment": a.ack_comment,
                "cleared_at": _iso(a.cleared_at),
            }
            for a in get_session().scalars(q)
        ]
    }
