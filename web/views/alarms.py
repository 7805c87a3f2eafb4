"""Alarms: list, acknowledge with a comment, clear. The controller owns alarm state: the
console only enqueues ack_alarm / clear_alarm commands."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.commands import CommandKind, enqueue
from db.models import Alarm, AlarmState, Command, CommandState
from web.audit import audit
from web.db import get_session
from web.roles import requires

bp = Blueprint("alarms", __name__, url_prefix="/alarms")


@bp.route("/")
@requires("alarms.view")
def index() -> ResponseReturnValue:
    db = get_session()
    open_alarms = (
        db.scalars(
            select(Alarm)
            .options(joinedload(Alarm.door), joinedload(Alarm.area))
            .where(Alarm.state != AlarmState.CLEARED)
            .order_by(Alarm.raised_at.desc())
        )
        .unique()
        .all()
    )
    cleared = (
        db.scalars(
            select(Alarm)
            .options(joinedload(Alarm.door), joinedload(Alarm.area))
            .where(Alarm.state == AlarmState.CLEARED)
            .order_by(Alarm.raised_at.desc())
            .limit(50)
        )
        .unique()
        .all()
    )
    pending: dict[int, str] = {}
    for cmd in db.scalars(
        select(Command).where(
            Command.kind.in_([CommandKind.ACK_ALARM, CommandKind.CLEAR_ALARM]),
            Command.state == CommandState.QUEUED,
        )
    ):
        alarm_id = (cmd.payload or {}).get("alarm_id")
        if isinstance(alarm_id, int):
            pending[alarm_id] = cmd.kind
    return render_template("alarms.html", open_alarms=open_alarms, cleared=cleared, pending=pending)


def _send(alarm_id: int, kind: CommandKind, action: str) -> ResponseReturnValue:
    db = get_session()
    alarm = db.get(Alarm, alarm_id)
    if alarm is None:
        abort(404)
    comment = request.form.get("comment", "").strip()[:1000]
    if kind == CommandKind.ACK_ALARM and not comment:
        flash(_("A comment is required to acknowledge an alarm."), "error")
        return redirect(url_for("alarms.index"))
    if alarm.state == AlarmState.CLEARED:
        flash(_("This alarm is already cleared."), "error")
        return redirect(url_for("alarms.index"))
    cmd = enqueue(db, kind, {"alarm_id": alarm.id, "comment": comment}, current_user.id)
    audit(
        action,
        "alarm",
        alarm.id,
        before={"state": alarm.state},
        after={"command": cmd.id, "comment": comment},
    )
    db.commit()
    flash(_("Sent to the controller."), "info")
    return redirect(url_for("alarms.index"))


@bp.route("/<int:alarm_id>/ack", methods=["POST"])
@requires("alarms.handle")
def acknowledge(alarm_id: int) -> ResponseReturnValue:
    return _send(alarm_id, CommandKind.ACK_ALARM, "alarm.acknowledge")


@bp.route("/<int:alarm_id>/clear", methods=["POST"])
@requires("alarms.handle")
def clear(alarm_id: int) -> ResponseReturnValue:
    return _send(alarm_id, CommandKind.CLEAR_ALARM, "alarm.clear")
