"""Who is inside each managed area, and the anti-passback reset (forgive) guards need.

When the in/out record is wrong (someone followed a colleague through a door), the person
is refused at the next door with ``antipassback``. The guard on duty resets the record here;
the controller lets that person's next crossing through once. Every reset is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, literal, select, tuple_

from db.commands import CommandKind, enqueue
from db.models import Area, Event, Person, Presence
from db.types import utcnow
from web.audit import audit
from web.db import get_session
from web.ids import parse_id
from web.roles import requires

bp = Blueprint("occupancy", __name__, url_prefix="/occupancy")

DENIALS_SHOWN_HOURS = 24
PAGE = 100


def _cursor(value: str) -> tuple[int, datetime, int] | None:
    parts = value.split("_") if value else []
    if len(parts) != 3:
        return None
    area, pid = parse_id(parts[0]), parse_id(parts[2])
    try:
        t = datetime.fromtimestamp(int(parts[1]) / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return (area, t, pid) if area is not None and pid is not None else None


@bp.route("/")
@requires("live.view")
def index() -> ResponseReturnValue:
    """Counts per area, then who is inside in (area, entry time) order, a page at a time
    (thousands of people inside are a count and pages, not one 3 MB table)."""
    db = get_session()
    areas = db.scalars(select(Area).order_by(Area.code)).all()
    counts = dict(
        db.execute(select(Presence.area_id, func.count()).group_by(Presence.area_id)).all()
    )
    q = select(Presence, Person).join(Person, Person.id == Presence.person_id)
    area_id = parse_id(request.args.get("area", ""))
    if area_id is not None:
        q = q.where(Presence.area_id == area_id)
    if (after := _cursor(request.args.get("after", ""))) is not None:
        q = q.where(
            tuple_(Presence.area_id, Presence.entered_at, Presence.id)
            > tuple_(*(literal(x) for x in after))
        )
    inside = db.execute(
        q.order_by(Presence.area_id, Presence.entered_at, Presence.id).limit(PAGE + 1)
    ).all()
    more = len(inside) > PAGE
    inside = inside[:PAGE]
    next_cursor = None
    if more:
        last = inside[-1][0]
        next_cursor = f"{last.area_id}_{int(last.entered_at.timestamp() * 1_000_000)}_{last.id}"
    since = utcnow() - timedelta(hours=DENIALS_SHOWN_HOURS)
    denials = db.execute(
        select(Event, Person)
        .join(Person, Person.id == Event.person_id)
        .where(Event.reason == "antipassback", Event.occurred_at >= since)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "occupancy.html",
        areas=areas,
        counts=counts,
        area_id=area_id,
        inside=inside,
        next_cursor=next_cursor,
        denials=denials,
        hours=DENIALS_SHOWN_HOURS,
    )


@bp.route("/forgive", methods=["POST"])
@requires("antipassback.forgive")
def forgive() -> ResponseReturnValue:
    db = get_session()
    person_id = request.form.get("person_id", "")
    area_id = request.form.get("area_id", "")
    pid, aid = parse_id(person_id), parse_id(area_id)
    if pid is None or (area_id and aid is None):
        abort(400)
    person = db.get(Person, pid)
    area = db.get(Area, aid) if aid is not None else None
    if person is None or (area_id and area is None):
        abort(404)
    request_forgive(person, area.id if area else None)
    return redirect(url_for("occupancy.index"))


def request_forgive(person: Person, area_id: int | None) -> None:
    """Ask the controller to reset a person's in/out record (audited, then committed)."""
    db = get_session()
    payload = {"person_id": person.id, "area_id": area_id}
    cmd = enqueue(db, CommandKind.FORGIVE, payload, current_user.id)
    audit("antipassback.forgive", "person", person.id, after={**payload, "command": cmd.id})
    db.commit()
    flash(_("The anti-passback state will be reset by the controller."), "info")
