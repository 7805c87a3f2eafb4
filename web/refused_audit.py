"""Refused requests (403) go into the operator audit log (5(3)): who tried to open what.

Written in a session of its own, so whatever the refused view had started is not committed
with it. Only the method, the path and the endpoint are kept, never the submitted values.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_login import current_user

from db.eventlog import append_audit
from db.models import AuditLog
from db.types import utcnow
from web.db import session_factory

log = logging.getLogger(__name__)


def _record(response: Response) -> Response:
    if response.status_code != 403:
        return response
    try:
        who = current_user if current_user.is_authenticated else None
    except Exception:  # no login context (an error raised very early)
        who = None
    try:
        with session_factory()() as db:
            append_audit(
                db,
                AuditLog(
                    occurred_at=utcnow(),
                    operator_id=who.id if who else None,
                    username=who.username if who else None,
                    action="access_refused",
                    target_type="page",
                    target_id=(request.endpoint or "")[:64] or None,
                    after={"method": request.method, "path": request.path[:200]},
                    remote_addr=request.remote_addr,
                ),
            )
            db.commit()
    except Exception:  # the refusal stands even if the database cannot take the row
        log.exception("could not record a refused request in the audit log")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_record)
