"""Four eyes (dual control): approval requests for the dangerous operations.

One operator asks (``request_approval``), a *different* operator with the right role decides
(``decide``); both are signed in to the console, where these functions are called from. The
operation is carried out on approval by the console, or, for what only the command line can
run (a purge: it needs the signing key and writes a certificate), once by the CLI acting on
the recorded approval (``take_for_cli``): refused unless approved, unused, of the same kind,
with the same parameters and not expired.

Every step appends an audit row naming both people. Who may ask and who may decide, per kind,
is in ``REQUESTERS`` and ``APPROVERS`` (docs/web.md repeats the table for auditors).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import ApprovalKind, ApprovalRequest, ApprovalState, AuditLog, Operator, Role
from db.types import utcnow

log = logging.getLogger(__name__)

A, M = Role.ADMINISTRATOR, Role.MANAGER

# who may ask for each kind of operation
REQUESTERS: dict[str, frozenset[str]] = {
    ApprovalKind.AUTHORIZATION: frozenset({M}),
    ApprovalKind.AUTHORIZATION_CHANGE: frozenset({M}),
    ApprovalKind.ADMINISTRATOR: frozenset({A}),
    ApprovalKind.MANAGER: frozenset({A}),
    ApprovalKind.RETENTION: frozenset({A, M}),
    ApprovalKind.PURGE: frozenset({A, M}),
    ApprovalKind.UNLOCK: frozenset({M}),
    ApprovalKind.MFA_RESET: frozenset({A}),
    ApprovalKind.REVIEW: frozenset({M}),
}
# who may decide: never the requester (and for a second-factor reset, never its subject).
# A manager may approve a new administrator so that a site with one administrator can get a
# second one without a shell; db.retention insists on a manager for purges (5(10)).
APPROVERS: dict[str, frozenset[str]] = {
    ApprovalKind.AUTHORIZATION: frozenset({M}),
    ApprovalKind.AUTHORIZATION_CHANGE: frozenset({M}),
    ApprovalKind.ADMINISTRATOR: frozenset({A, M}),
    ApprovalKind.MANAGER: frozenset({A, M}),
    ApprovalKind.RETENTION: frozenset({A, M}),
    ApprovalKind.PURGE: frozenset({M}),
    ApprovalKind.UNLOCK: frozenset({M}),
    ApprovalKind.MFA_RESET: frozenset({A, M}),
    ApprovalKind.REVIEW: frozenset({M}),
}
# carried out by the command line acting on the approval, not by the console
CLI_KINDS = frozenset({ApprovalKind.PURGE, ApprovalKind.REVIEW})

PENDING_FOR = timedelta(days=7)  # a request nobody decided within a week lapses
USE_WITHIN = timedelta(hours=24)  # an approval for the command line is used within a day


class ApprovalError(ValueError):
    """An approval step was refused; ``code`` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Actor:
    """The operator acting, as plain values (callers hold ORM rows or a web user)."""

    id: int
    username: str
    role: str
    active: bool = True

    @classmethod
    def of(cls, op: Operator) -> Actor:
        return cls(op.id, op.username, op.role, op.active)


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE changed (the conditional updates below test it)."""
    return int(cast("CursorResult[Any]", result).rowcount)


def is_cli_kind(req: ApprovalRequest) -> bool:
    return req.kind in CLI_KINDS or (
        req.kind == ApprovalKind.RETENTION and req.params.get("channel") == "cli"
    )


def _audit(
    session: Session,
    actor: Actor | None,
    action: str,
    req: ApprovalRequest,
    before: dict[str, Any] | None,
    now: datetime,
    remote_addr: str | None = None,
) -> None:
    append_audit(
        session,
        AuditLog(
            occurred_at=now,
            operator_id=actor.id if actor else None,
            username=actor.username if actor else None,
            action=action,
            target_type="approval",
            target_id=str(req.id),
            before=before,
            after=describe(session, req),
            remote_addr=remote_addr,
        ),
    )


def describe(session: Session, req: ApprovalRequest) -> dict[str, Any]:
    """The request as JSON-friendly values, both people by name (for audit rows)."""

    def name(op_id: int | None) -> str | None:
        if op_id is None:
            return None
        op = session.get(Operator, op_id)
        return op.username if op else str(op_id)

    return {
        "kind": req.kind,
        "params": req.params,
        "reason": req.reason,
        "state": req.state,
        "requested_by": name(req.requested_by),
        "requested_at": req.requested_at.isoformat() if req.requested_at else None,
        "decided_by": name(req.decided_by),
        "decided_at": req.decided_at.isoformat() if req.decided_at else None,
        "decision_note": req.decision_note,
        "result": req.result,
    }


def _state(req: ApprovalRequest) -> dict[str, Any]:
    return {"state": req.state}


def expire_stale(session: Session, now: datetime | None = None) -> int:
    """Mark pending requests past their time, and unused CLI approvals past theirs, expired."""
    now = now or utcnow()
    rows = list(
        session.scalars(
            select(ApprovalRequest).where(
                ApprovalRequest.state.in_([ApprovalState.PENDING, ApprovalState.APPROVED]),
                ApprovalRequest.expires_at <= now,
            )
        )
    )
    for req in rows:
        before = _state(req)
        req.state = ApprovalState.EXPIRED
        _audit(session, None, "approval.expire", req, before, now)
    if rows:
        session.flush()
    return len(rows)


def pending_for(session: Session, kind: str, **match: Any) -> ApprovalRequest | None:
    """The open (pending) request of ``kind`` whose parameters include ``match``."""
    for req in session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.kind == kind, ApprovalRequest.state == ApprovalState.PENDING)
        .order_by(ApprovalRequest.id.desc())
    ):
        if all(req.params.get(k) == v for k, v in match.items()):
            return req
    return None


def request_approval(
    session: Session,
    kind: str,
    params: dict[str, Any],
    requester: Actor,
    reason: str | None = None,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> ApprovalRequest:
    """Record a request (flushes and audits; the caller commits). The same open request
    twice is refused, so a second click does not make a second row to approve."""
    now = now or utcnow()
    if kind not in REQUESTERS:
        raise ApprovalError("unknown_kind", f"no operation {kind!r} needs approval")
    if requester.role not in REQUESTERS[kind] or not requester.active:
        raise ApprovalError("not_allowed", f"a {requester.role} cannot ask for {kind}")
    expire_stale(session, now)
    for req in session.scalars(
        select(ApprovalRequest).where(
            ApprovalRequest.kind == kind, ApprovalRequest.state == ApprovalState.PENDING
        )
    ):
        if req.params == params:
            raise ApprovalError("already_pending", f"request {req.id} already asks for this")
    req = ApprovalRequest(
        kind=kind,
        params=params,
        reason=(reason or "").strip()[:1000] or None,
        state=ApprovalState.PENDING,
        requested_by=requester.id,
        requested_at=now,
        expires_at=now + PENDING_FOR,
    )
    session.add(req)
    session.flush()
    _audit(session, requester, "approval.request", req, None, now, remote_addr)
    log.info("approval %d requested: %s by %s", req.id, kind, requester.username)
    return req


def check_decider(session: Session, req: ApprovalRequest, approver: Actor) -> None:
    """Why ``approver`` may not decide ``req`` (an ApprovalError), or nothing."""
    if req.state != ApprovalState.PENDING:
        raise ApprovalError("not_pending", f"request {req.id} is {req.state}, not pending")
    if approver.id == req.requested_by:
        raise ApprovalError(
            "same_person", "the requester cannot decide their own request: a second person must"
        )
    if req.kind == ApprovalKind.MFA_RESET and approver.id == req.params.get("operator_id"):
        raise ApprovalError("same_person", "the operator concerned cannot approve their own reset")
    if approver.role not in APPROVERS.get(req.kind, frozenset()) or not approver.active:
        raise ApprovalError("not_allowed", f"a {approver.role} cannot decide {req.kind}")


def decide(
    session: Session,
    request_id: int,
    approver: Actor,
    approve: bool,
    note: str | None = None,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> ApprovalRequest:
    """Approve or reject (flushes and audits; the caller carries out and commits).

    The state changes with a conditional UPDATE, so two people deciding at once cannot both
    win: the second finds the request no longer pending."""
    now = now or utcnow()
    expire_stale(session, now)
    req = session.get(ApprovalRequest, request_id)
    if req is None:
        raise ApprovalError("unknown_request", f"no approval request {request_id}")
    check_decider(session, req, approver)
    new_state = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
    won = rows_changed(
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == req.id, ApprovalRequest.state == ApprovalState.PENDING)
            .values(
                state=new_state,
                decided_by=approver.id,
                decided_at=now,
                decision_note=(note or "").strip()[:1000] or None,
                expires_at=now + USE_WITHIN if approve else req.expires_at,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if won != 1:
        raise ApprovalError("not_pending", f"request {req.id} was decided by someone else")
    session.refresh(req)
    _audit(
        session,
        approver,
        "approval.approve" if approve else "approval.reject",
        req,
        {"state": ApprovalState.PENDING},
        now,
        remote_addr,
    )
    return req


def cancel(
    session: Session, request_id: int, actor: Actor, *, now: datetime | None = None
) -> ApprovalRequest:
    """The requester withdraws a pending request (audited)."""
    now = now or utcnow()
    req = session.get(ApprovalRequest, request_id)
    if req is None:
        raise ApprovalError("unknown_request", f"no approval request {request_id}")
    if req.requested_by != actor.id:
        raise ApprovalError("not_allowed", "only the requester can withdraw a request")
    if req.state != ApprovalState.PENDING:
        raise ApprovalError("not_pending", f"request {req.id} is {req.state}, not pending")
    req.state = ApprovalState.CANCELLED
    _audit(session, actor, "approval.cancel", req, {"state": ApprovalState.PENDING}, now)
    return req


def mark_done(
    session: Session,
    req: ApprovalRequest,
    result: dict[str, Any],
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> None:
    """Record that the approved operation was carried out; an approval is used once only
    (conditional UPDATE: a second use at the same moment finds it done)."""
    now = now or utcnow()
    won = rows_changed(
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == req.id, ApprovalRequest.state == ApprovalState.APPROVED)
            .values(state=ApprovalState.DONE, done_at=now, result=result)
            .execution_options(synchronize_session=False)
        )
    )
    if won != 1:
        raise ApprovalError("used", f"approval {req.id} was used already")
    session.refresh(req)
    _audit(session, actor, "approval.done", req, {"state": ApprovalState.APPROVED}, now)


def take_for_cli(
    session: Session,
    request_id: int,
    kind: str,
    params: dict[str, Any],
    *,
    now: datetime | None = None,
) -> ApprovalRequest:
    """The approval the command line acts on, after every check; ``mark_done`` it in the
    transaction that carries the operation out. Refusals are ApprovalErrors."""
    now = now or utcnow()
    req = session.get(ApprovalRequest, request_id)
    if req is None:
        raise ApprovalError("unknown_request", f"no approval request {request_id}")
    if req.kind != kind:
        raise ApprovalError("wrong_kind", f"approval {req.id} is for {req.kind}, not {kind}")
    if req.state == ApprovalState.DONE:
        raise ApprovalError("used", f"approval {req.id} was used already ({req.done_at})")
    if req.state == ApprovalState.EXPIRED or (
        req.state == ApprovalState.APPROVED and req.expires_at <= now
    ):
        raise ApprovalError("expired", f"approval {req.id} expired at {req.expires_at}")
    if req.state != ApprovalState.APPROVED:
        raise ApprovalError("not_approved", f"approval {req.id} is {req.state}, not approved")
    if not is_cli_kind(req):
        raise ApprovalError("wrong_kind", f"approval {req.id} is carried out by the console")
    wanted = {k: v for k, v in req.params.items() if k != "channel"}
    if wanted != params:
        raise ApprovalError(
            "params_differ",
            f"approval {req.id} is for {wanted}, not {params}: ask for a new approval",
        )
    return req
