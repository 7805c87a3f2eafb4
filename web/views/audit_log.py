"""The operator audit log (5(3)), newest first, keyset-paged; chain verification."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from db.models import AuditLog
from web.db import get_session
from web.integrity import verify_chain
from web.roles import requires

bp = Blueprint("audit_log", __name__, url_prefix="/audit")

PAGE = 100


@bp.route("/")
@requires("audit.view")
def index():  # type: ignore[no-untyped-def]
    db = get_session()
    q = select(AuditLog)
    action = request.args.get("action", "").strip()[:64]
    if action:
        q = q.where(AuditLog.action.like(action.replace("%", "") + "%"))
    username = request.args.get("username", "").strip()[:64]
    if username:
        q = q.where(AuditLog.username == username)
    after = request.args.get("after", "")
    if after.isdigit():  # ids grow with time: the id alone is a stable keyset
        q = q.where(AuditLog.id < int(after))
    rows = db.scalars(q.order_by(AuditLog.id.desc()).limit(PAGE + 1)).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_template(
        "audit.html",
        rows=rows,
        next_after=rows[-1].id if more and rows else None,
        action=action,
        username=username,
    )


@bp.route("/verify", methods=["GET", "POST"])
@requires("integrity.verify")
def verify():  # type: ignore[no-untyped-def]
    results = None
    if request.method == "POST":
        from web.audit import audit

        db = get_session()
        results = {name: verify_chain(db, name) for name in ("events", "audit")}
        audit(
            "integrity.verify",
            "log",
            None,
            after={
                k: {"ok": v.ok, "rows": v.rows, "first_bad_seq": v.first_bad_seq}
                for k, v in results.items()
            },
        )
        db.commit()
    return render_template("verify.html", results=results)
