"""The controllers' status page: each controller's health, from its heartbeat row.

A controller writes its ``controllers`` row every few seconds from a thread of its own
(controller.sharing.Heartbeat): heartbeat time, its last event, the works kept in its
journal (not yet in the database) and its offline readers. A heartbeat older than
``db.controllers.STALE_SECONDS`` means the controller is stopped or cannot reach the
database; its doors go on deciding from memory if it runs.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from db.controllers import STALE_SECONDS
from db.models import ControllerRow
from db.types import utcnow
from web.db import get_session
from web.roles import requires

bp = Blueprint("controllers", __name__, url_prefix="/controllers")


@bp.route("/")
@requires("live.view")
def index() -> ResponseReturnValue:
    db = get_session()
    rows = db.scalars(select(ControllerRow).order_by(ControllerRow.code)).all()
    now = utcnow()
    stale = now - timedelta(seconds=STALE_SECONDS)
    return render_template(
        "controllers.html",
        rows=rows,
        alive={r.code: r.heartbeat_at is not None and r.heartbeat_at >= stale for r in rows},
        age={
            r.code: int((now - r.heartbeat_at).total_seconds()) if r.heartbeat_at else None
            for r in rows
        },
    )
