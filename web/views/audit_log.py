"""The operator audit log (5(3)), newest first, keyset-paged; chain verification."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from db.models import AuditLog
from domain.csvsafe import SafeCsvWriter
from web.db import get_session
from web.ids import MAX_BIG_ID, parse_id
from web.integrity import verify_chain
from web.roles import requires

bp = Blueprint("audit_log", __name__, url_prefix="/audit")

PAGE = 100


def _close_sign_in_windows() -> None:
    """Counted sign-in failures whose window has closed become their summary rows now, so
    the auditor sees them (db.throttle; otherwise the next sign-in writes them)."""
    from db import throttle
    from db.types import utcnow

    db = get_session()
    throttle.flush_due(db, utcnow())
    db.commit()


@bp.route("/")
@requires("audit.view")
def index() -> ResponseReturnValue:
    db = get_session()
    _close_sign_in_windows()
    q = select(AuditLog)
    action = request.args.get("action", "").strip()[:64]
    if action:
        q = q.where(AuditLog.action.like(action.replace("%", "") + "%"))
    username = request.args.get("username", "").strip()[:64]
    if username:
        q = q.where(AuditLog.username == username)
    after = parse_id(request.args.get("after", ""), MAX_BIG_ID)
    if after is not None:  # ids grow with time: the id alone is a stable keyset
        q = q.where(AuditLog.id < after)
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
def verify() -> ResponseReturnValue:
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


@bp.route("/export.csv")
@requires("audit.view")
def export() -> ResponseReturnValue:
    """The whole audit log as CSV (UTF-8 with BOM), streamed in id batches."""
    import io
    import json

    from flask import Response, stream_with_context

    from web.audit import audit
    from web.db import session_factory
    from web.i18n import site_zone, site_zone_label

    zone, zone_name = site_zone(), site_zone_label()
    _close_sign_in_windows()
    audit("audit.export", "audit", None)
    get_session().commit()

    def generate() -> Iterator[str]:
        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        w.writerow(
            [
                "seq",
                f"time ({zone_name})",
                "operator",
                "action",
                "target_type",
                "target_id",
                "before",
                "after",
                "remote_addr",
                "hash",
            ]
        )
        yield "\ufeff" + buf.getvalue()
        last = 0
        with session_factory()() as db:
            while True:
                rows = db.scalars(
                    select(AuditLog).where(AuditLog.id > last).order_by(AuditLog.id).limit(1000)
                ).all()
                if not rows:
                    return
                buf.seek(0)
                buf.truncate()
                for r in rows:
                    w.writerow(
                        [
                            r.seq,
                            r.occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                            r.username or "",
                            r.action,
                            r.target_type or "",
                            r.target_id or "",
                            json.dumps(r.before, ensure_ascii=False) if r.before else "",
                            json.dumps(r.after, ensure_ascii=False) if r.after else "",
                            r.remote_addr or "",
                            r.hash or "",
                        ]
                    )
                yield buf.getvalue()
                last = rows[-1].id
                db.expunge_all()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="nyutai-audit.csv"'},
    )
