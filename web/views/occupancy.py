"""Who is inside each managed area, and the anti-passback reset (forgive) guards need.

When the in/out record is wrong (someone followed a colleague through a door), the person
is refused at the next door with ``antipassback``. The guard on duty resets the record here;
the controller lets that person's next crossing through once. Every reset is audited.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from db.commands import CommandKind, enqueue
from db.models import Area, Event, Person, Presence
from db.types import utcnow
from web.audit import audit
from web.db import get_session
from web.ids import parse_id
from web.roles import requires

bp = Blueprint("occupancy", __name__, url_prefix="/occupancy")

DENIALS_SHOWN_HOURS = 24


@bp.route("/")
@requires("live.view")
def index() -> ResponseReturnValue:
    db = get_session()
    areas = db.scalars(select(Area).order_by(Area.code)).all()
    inside = db.execute(
        select(Presence, Person)
        .join(Person, Person.id == Presence.person_id)
        .order_by(Presence.area_id, Presence.entered_at)
    ).all()
    since = utcnow() - timedelta(hours=DENIALS_SHOWN_HOURS)
    denials = db.execute(
        select(Event, Person)
        .join(Person, Person.id == Event.person_id)
        .where(Event.reason == "antipassback", Event.occurred_at >= since)
        .order_by(Event.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "occupancy.html",
        areas=areas,
        inside=inside,
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
