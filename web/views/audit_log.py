"""The operator audit log (5(3)), newest first, keyset-paged; chain verification."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
    """Newest first, keyset pages on the id (ids grow with time) in both directions, like
    the event log: ``after`` = older than that id, ``before`` = newer."""
    from flask_babel import get_locale

    from web.audit_view import changes
    from web.i18n import site_zone

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
    before = parse_id(request.args.get("before", ""), MAX_BIG_ID)
    if before is not None and after is None:
        rows = list(
            reversed(
                db.scalars(
                    q.where(AuditLog.id > before).order_by(AuditLog.id.asc()).limit(PAGE + 1)
                ).all()
            )
        )
        more_newer = len(rows) > PAGE
        rows = rows[-PAGE:] if more_newer else rows
        more_older = True
    else:
        if after is not None:
            q = q.where(AuditLog.id < after)
        rows = list(db.scalars(q.order_by(AuditLog.id.desc()).limit(PAGE + 1)).all())
        more_older = len(rows) > PAGE
        rows = rows[:PAGE]
        more_newer = after is not None
    locale, zone = str(get_locale() or "ja"), site_zone()
    return render_template(
        "audit.html",
        rows=rows,
        diffs={r.id: changes(r.before, r.after, locale, zone, r.target_type) for r in rows},
        page=AuditPage(
            next_cursor=str(rows[-1].id) if more_older and rows else None,
            prev_cursor=str(rows[0].id) if more_newer and rows else None,
        ),
        action=action,
        username=username,
    )


@dataclass
class AuditPage:
    next_cursor: str | None  # older rows
    prev_cursor: str | None  # newer rows


@bp.route("/verify", methods=["GET", "POST"])
@requires("integrity.verify")
def verify() -> ResponseReturnValue:
    results = None
    if request.method == "POST":
        from web.audit import audit

        db = get_session()
        from db.chain import chain_log
        from db.controllers import event_chains

        # every controller's events chain, then the audit log
        names = [chain_log(c) for c in event_chains(db, scan=True)] + ["audit"]
        results = {name: verify_chain(db, name) for name in names}
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
    from flask_babel import get_locale

    from domain.words import word
    from web.audit import audit
    from web.db import session_factory
    from web.i18n import site_zone, site_zone_label

    zone, zone_name = site_zone(), site_zone_label()
    locale = str(get_locale() or "ja")
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
                "action (words)",
                "target_type",
                "target (words)",
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
                            word("audit_action", r.action, locale),
                            r.target_type or "",
                            word("audit_target", r.target_type, locale),
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
