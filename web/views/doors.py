"""Doors: each area's lockdown state and its doors, and remote door control for managers and
administrators (issue 13): a momentary unlock of one door, the lockdown of an area and its
lifting. The console never touches door state: each action is a command (db.commands) the
controller carries out (controller.remote), audited here with who, which door or area and
the required reason; the controller's event row is the evidence in the hash chain.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.commands import DOOR_CONTROL_EXPIRES_SECONDS, DOOR_CONTROL_KINDS, CommandKind, enqueue
from db.lockdowns import MAX_REASON, active_lockdowns
from db.models import Area, Command, DeviceStatus, Door, Operator
from web.audit import audit
from web.db import get_session
from web.roles import requires

bp = Blueprint("doors", __name__, url_prefix="/doors")

RECENT_COMMANDS = 20


@bp.route("/")
@requires("doors.view")
def index() -> ResponseReturnValue:
    db = get_session()
    areas = list(
        db.scalars(select(Area).options(joinedload(Area.doors)).order_by(Area.code)).unique()
    )
    states = dict(
        db.execute(
            select(DeviceStatus.key, DeviceStatus.state).where(DeviceStatus.kind == "door")
        ).all()
    )
    recent = list(
        db.execute(
            select(Command, Operator.username)
            .outerjoin(Operator, Operator.id == Command.operator_id)
            .where(Command.kind.in_([k.value for k in DOOR_CONTROL_KINDS]))
            .order_by(Command.id.desc())
            .limit(RECENT_COMMANDS)
        ).all()
    )
    return render_template(
        "doors.html", areas=areas, states=states, locked=active_lockdowns(db), recent=recent
    )


def _reason() -> str | None:
    reason = request.form.get("reason", "").strip()[:MAX_REASON]
    if not reason:
        flash(_("A reason is required."), "error")
        return None
    return reason


def _send(kind: CommandKind, payload: dict[str, Any], action: str, target: str, tid: int) -> None:
    db = get_session()
    cmd = enqueue(db, kind, payload, current_user.id, expires_in=DOOR_CONTROL_EXPIRES_SECONDS)
    audit(
        action,
        target,
        tid,
        after={**payload, "command": cmd.id, "expires_in": int(DOOR_CONTROL_EXPIRES_SECONDS)},
    )
    db.commit()
    flash(_("Sent to the controller."), "info")


@bp.route("/<int:door_id>/unlock", methods=["POST"])
@requires("doors.control")
def unlock(door_id: int) -> ResponseReturnValue:
    db = get_session()
    door = db.get(Door, door_id)
    if door is None:
        abort(404)
    reason = _reason()
    if reason is not None:
        payload = {"door": door.code, "reason": reason}
        _send(CommandKind.UNLOCK_DOOR, payload, "door.remote_unlock", "door", door.id)
    return redirect(url_for("doors.index"))


@bp.route("/areas/<int:area_id>/lockdown", methods=["POST"])
@requires("doors.control")
def lockdown(area_id: int) -> ResponseReturnValue:
    return _area_command(area_id, CommandKind.LOCKDOWN, "area.lockdown")


@bp.route("/areas/<int:area_id>/lift", methods=["POST"])
@requires("doors.control")
def lift(area_id: int) -> ResponseReturnValue:
    return _area_command(area_id, CommandKind.LIFT_LOCKDOWN, "area.lockdown_lift")


def _area_command(area_id: int, kind: CommandKind, action: str) -> ResponseReturnValue:
    db = get_session()
    area = db.get(Area, area_id)
    if area is None:
        abort(404)
    reason = _reason()
    if reason is not None:
        _send(kind, {"area": area.code, "reason": reason}, action, "area", area.id)
    return redirect(url_for("doors.index"))
