"""Read-only JSON API for integrations (per-operator bearer tokens, same role checks)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.models import Alarm, AlarmState, Event, Presence
from web import eventquery
from web.audit import audit
from web.db import get_session
from web.i18n import site_zone
from web.ids import parse_id
from web.roles import requires

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None else None


def event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "seq": e.seq,
        "occurred_at": _iso(e.occurred_at),
        "kind": e.kind,
        "door": e.door.code if e.door else None,
        "area_id": e.area_id,
        "reader": e.reader,
        "direction": e.direction,
        "person_id": e.person_id,
        "person": e.person.name if e.person else None,
        "visitor": e.visitor,
        "decision": e.decision,
        "reason": e.reason,
        "purpose": e.purpose,
        "escort_person_id": e.escort_person_id,
        "raw_card_id": e.raw_card_id,
        "hash": e.hash,
    }


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
    page = eventquery.page(get_session(), f, after=request.args.get("after"), size=size)
    body = {"events": [event_json(e) for e in page.rows], "next": page.next_cursor}
    _audit_read("api.events", "events", len(page.rows), {"filter": dict(request.args)})
    return body


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
    rows = get_session().scalars(
        select(Presence).options(joinedload(Presence.person)).order_by(Presence.entered_at)
    )
    body = {
        "inside": [
            {
                "person_id": p.person_id,
                "person": p.person.name,
                "visitor": p.person.is_visitor,
                "area_id": p.area_id,
                "entered_at": _iso(p.entered_at),
                "escort_person_id": p.escort_person_id,
                "visit_id": p.visit_id,
            }
            for p in rows
        ]
    }
    _audit_read("api.occupancy", "presence", len(body["inside"]))
    return body


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
