"""Writing the operator audit log (5(3)): who did what, with before/after values."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_login import current_user

from db.eventlog import append_audit
from db.models import AuditLog, Operator
from db.types import utcnow
from web.db import get_session

# Keys never written to the audit log, whatever a caller passes.
SECRET_KEYS = frozenset({"password", "password_hash", "pin", "pin_hash", "token", "token_hash"})


def _clean(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: ("(set)" if k in SECRET_KEYS else v) for k, v in values.items()}


def audit(
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    operator: Operator | None = None,
    username: str | None = None,
) -> AuditLog:
    """Append an audit row in the request's session (the view commits with its change)."""
    op_id: int | None
    if operator is not None:
        op_id, username = operator.id, operator.username
    elif current_user and current_user.is_authenticated:
        op_id, username = current_user.id, current_user.username
    else:
        op_id = None
    return append_audit(
        get_session(),
        AuditLog(
            occurred_at=utcnow(),
            operator_id=op_id,
            username=username,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            before=_clean(before),
            after=_clean(after),
            remote_addr=request.remote_addr if request else None,
        ),
    )


def snapshot(obj: object, fields: tuple[str, ...]) -> dict[str, Any]:
    """The listed attributes as JSON-friendly values, for before/after."""
    out: dict[str, Any] = {}
    for f in fields:
        v = getattr(obj, f)
        out[f] = v.isoformat() if hasattr(v, "isoformat") else v
    return out
