"""The notification queue's status page (managers, administrators): what was sent to hosts
and escorts, what waits for a retry and why, what was never sent (no mail server)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from db.models import Notification, Visit
from domain.vocabulary import NotificationKind, NotificationState
from web.db import get_session
from web.ids import parse_id
from web.roles import requires

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PAGE = 50
STATE_LABELS = {
    NotificationState.QUEUED: _l("Waiting to be sent"),
    NotificationState.SENT: _l("Sent"),
    NotificationState.FAILED: _l("Failed (gave up)"),
    NotificationState.NOT_SENT: _l("Not sent"),
}
KIND_LABELS = {
    NotificationKind.BADGE_ISSUED: _l("Badge issued"),
    NotificationKind.FIRST_ENTRY: _l("First entry"),
}
ROLE_LABELS = {"host": _l("Host"), "escort": _l("Escort")}


@bp.route("/")
@requires("notifications.view")
def index() -> ResponseReturnValue:
    db = get_session()
    counts = dict(
        db.execute(
            select(Notification.state, func.count(Notification.id)).group_by(Notification.state)
        ).all()
    )
    state = request.args.get("state", "")
    q = select(Notification).options(
        joinedload(Notification.recipient), joinedload(Notification.visit).joinedload(Visit.visitor)
    )
    if state in set(NotificationState):
        q = q.where(Notification.state == state)
    before = parse_id(request.args.get("before"))
    if before is not None:  # keyset paging, newest first
        q = q.where(Notification.id < before)
    rows = list(db.scalars(q.order_by(Notification.id.desc()).limit(PAGE + 1)).unique())
    more = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render_template(
        "notifications.html",
        rows=rows[:PAGE],
        counts=counts,
        state=state,
        more=more,
        states=STATE_LABELS,
        kinds=KIND_LABELS,
        roles=ROLE_LABELS,
        mail=current_app.config["NYUTAI_MAIL"],
    )
