"""Incidents (section 6): list, view with evidence, close with cause and prevention notes.

Closing goes through ``db.incidents.close_incident``, which checks the role again and
writes the audit row. Snapshot images are streamed from the data directory by Snapshot id
only; a stored path that leads outside the data directory (``..``, absolute, symlink) is
refused, so a crafted row cannot turn this route into a file reader.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.incidents import IncidentError, close_incident
from db.models import Alarm, Area, Event, Incident, Operator, Snapshot
from web.db import get_session
from web.roles import requires

log = logging.getLogger(__name__)
bp = Blueprint("incidents", __name__, url_prefix="/incidents")

STATES = ("open", "closed", "all")
NOTE_MAX = 4000
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@bp.route("/")
@requires("incidents.view")
def index() -> ResponseReturnValue:
    state = request.args.get("state", "open")
    if state not in STATES:
        state = "open"
    q = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(500)
    if state != "all":
        q = q.where(Incident.state == state)
    db = get_session()
    incidents = db.scalars(q).all()
    areas = {a.id: a for a in db.scalars(select(Area))}
    return render_template("incidents.html", incidents=incidents, state=state, areas=areas)


def _evidence_ids(inc: Incident, key: str) -> list[int]:
    return [i for i in (inc.evidence or {}).get(key, []) if isinstance(i, int)]


@bp.route("/<int:incident_id>")
@requires("incidents.view")
def show(incident_id: int) -> ResponseReturnValue:
    db = get_session()
    inc = db.get(Incident, incident_id)
    if inc is None:
        abort(404)
    event_ids = _evidence_ids(inc, "events")
    events = (
        db.scalars(
            select(Event)
            .options(joinedload(Event.door), joinedload(Event.person))
            .where(Event.id.in_(event_ids))
            .order_by(Event.occurred_at, Event.id)
        ).all()
        if event_ids
        else []
    )
    snap_ids = _evidence_ids(inc, "snapshots")
    snapshots = (
        db.scalars(
            select(Snapshot).where(Snapshot.id.in_(snap_ids)).order_by(Snapshot.taken_at)
        ).all()
        if snap_ids
        else []
    )
    alarm = (
        db.scalars(
            select(Alarm).options(joinedload(Alarm.door)).where(Alarm.id == inc.alarm_id)
        ).first()
        if inc.alarm_id
        else None
    )
    closer = db.get(Operator, inc.closed_by) if inc.closed_by else None
    return render_template(
        "incident.html",
        inc=inc,
        area=db.get(Area, inc.area_id) if inc.area_id else None,
        alarm=alarm,
        events=events,
        snapshots=snapshots,
        closer=closer.display_name if closer else "",
        findings=[str(f) for f in (inc.evidence or {}).get("findings", [])],
        note_max=NOTE_MAX,
    )


ERRORS = {
    "notes_required": lambda: _("Both the cause and the prevention notes are required."),
    "already_closed": lambda: _("This incident is already closed."),
    "not_manager": lambda: _("Only a manager can close an incident."),
    "unknown_incident": lambda: _("There is no such incident."),
}


@bp.route("/<int:incident_id>/close", methods=["POST"])
@requires("incidents.close")
def close(incident_id: int) -> ResponseReturnValue:
    db = get_session()
    if db.get(Incident, incident_id) is None:
        abort(404)
    operator = db.get(Operator, current_user.id)
    if operator is None:
        abort(403)
    cause = request.form.get("cause", "")[:NOTE_MAX]
    prevention = request.form.get("prevention", "")[:NOTE_MAX]
    try:
        close_incident(db, incident_id, operator, cause, prevention)
    except IncidentError as exc:
        db.rollback()
        log.info("incident %s not closed: %s", incident_id, exc.code)
        flash(ERRORS.get(exc.code, ERRORS["notes_required"])(), "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    db.commit()
    flash(_("The incident is closed."), "info")
    return redirect(url_for("incidents.show", incident_id=incident_id))


# what a camera image starts with; anything else under an image name is not served
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def snapshot_file(data_dir: Path, stored: str, folder: str = "snapshots") -> Path | None:
    """The snapshot's file, if it is a camera image inside the snapshot folder, else None.

    The stored path (relative to ``data_dir``) is resolved, links followed, and must land in
    ``data_dir/folder`` on a file with an image suffix and an image's first bytes: a row
    pointing at ``keys/checkpoint.key`` or the database (a tampered row, a bug) serves nothing.
    """
    root = (data_dir / folder).resolve()
    try:
        target = (data_dir / stored).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    if target.suffix.lower() not in IMAGE_TYPES:
        return None
    try:
        with target.open("rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if not head.startswith(IMAGE_MAGIC):
        return None
    return target


@bp.route("/snapshots/<int:snapshot_id>")
@requires("incidents.view")
def snapshot(snapshot_id: int) -> ResponseReturnValue:
    cfg = current_app.config.get("NYUTAI_SITE")
    snap = get_session().get(Snapshot, snapshot_id)
    if snap is None or cfg is None:
        abort(404)
    path = snapshot_file(cfg.data_dir, snap.path, cfg.controller.snapshot_dir)
    if path is None:
        log.warning("snapshot %s: not an image in the snapshot folder", snapshot_id)
        abort(404)
    return send_file(path, mimetype=IMAGE_TYPES[path.suffix.lower()], max_age=0)
