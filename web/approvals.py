"""Four eyes in the console: the approvals page, asking, deciding, and carrying out.

The rules (who asks, who decides, expiry, single use) are in ``db.approvals``; this module
collects forms, insists on a recent re-authentication (``web.mfa.needs_reauth``) for every
step, and carries out the console's kinds on approval (``EXECUTORS``), in the transaction
that records the approval: both happen or neither. Command-line kinds (purge, review
decisions, retention changes asked for the command line) stay approved until the CLI uses
them once (``nyutai purge --approval ID`` ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db import approvals as four_eyes
from db.approvals import Actor, ApprovalError
from db.controllers import chain_log, controller_codes, event_chains
from db.models import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    Authorization,
    AuthorizationState,
    Credential,
    CredentialState,
    Operator,
    Role,
    WebSession,
)
from db.settings import (
    CONTRACT_END,
    RETENTION_YEARS,
    SettingError,
    check_setting,
    set_setting,
    stored_value,
)
from web import totp
from web.accounts import revoke_operator_tokens
from web.audit import audit, snapshot
from web.clock import now as clock
from web.db import get_session
from web.ids import parse_id
from web.mfa import needs_reauth
from web.roles import requires

log = logging.getLogger(__name__)
bp = Blueprint("approvals", __name__, url_prefix="/approvals")

KIND_LABELS = {
    ApprovalKind.AUTHORIZATION: _l("Approve an authorization"),
    ApprovalKind.AUTHORIZATION_CHANGE: _l("Change an approved authorization"),
    ApprovalKind.ADMINISTRATOR: _l("Make an administrator"),
    ApprovalKind.MANAGER: _l("Make a manager"),
    ApprovalKind.RETENTION: _l("Change the contract end or retention"),
    ApprovalKind.PURGE: _l("Purge records after retention"),
    ApprovalKind.UNLOCK: _l("Unlock a card locked by wrong PINs"),
    ApprovalKind.MFA_RESET: _l("Reset an operator's second factor"),
    ApprovalKind.REVIEW: _l("Access review decision (command line)"),
}
STATE_LABELS = {
    ApprovalState.PENDING: _l("Waiting for a second person"),
    ApprovalState.APPROVED: _l("Approved: waiting for the command line"),
    ApprovalState.REJECTED: _l("Rejected"),
    ApprovalState.CANCELLED: _l("Withdrawn"),
    ApprovalState.EXPIRED: _l("Expired"),
    ApprovalState.DONE: _l("Carried out"),
}
AUTH_TERMS = ("person_id", "area_id", "valid_from", "valid_until", "default_purpose", "schedule")
REASON_MAX = 1000


def actor() -> Actor:
    return Actor(current_user.id, current_user.username, current_user.role)


def authorization_terms(auth: Authorization) -> dict[str, Any]:
    """What an approval of ``auth`` approves: if any of it changes, the approval is void."""
    return {"authorization_id": auth.id, **snapshot(auth, AUTH_TERMS)}


def ask(kind: str, params: dict[str, Any], reason: str | None = None) -> ApprovalRequest | None:
    """Record a request from the signed-in operator; flashes what happened (caller commits)."""
    db = get_session()
    try:
        req = four_eyes.request_approval(
            db, kind, params, actor(), reason, now=clock(), remote_addr=request.remote_addr
        )
    except ApprovalError as exc:
        flash(refusal_text(exc), "error")
        return None
    flash(
        _("Request %(id)s is recorded. A second person must approve it.", id=req.id),
        "info",
    )
    return req


def refusal_text(exc: ApprovalError) -> str:
    return {
        "same_person": _("You asked for this yourself: a second person must decide it."),
        "not_allowed": _("Your role cannot do this step."),
        "not_pending": _("This request is no longer waiting for a decision."),
        "already_pending": _("The same request is already waiting for approval."),
        "changed": _("The record changed after the request. Ask again."),
        "unknown_request": _("There is no such request."),
    }.get(exc.code, _("Refused: %(why)s", why=str(exc)))


# --- carrying out the console's kinds ------------------------------------------------------


def _name(db: Session, op_id: int | None) -> str | None:
    op = db.get(Operator, op_id) if op_id is not None else None
    return op.username if op else None


def _both(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    return {
        "approval": req.id,
        "requested_by": _name(db, req.requested_by),
        "approved_by": _name(db, req.decided_by),
    }


def _do_authorization(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    auth = db.get(Authorization, req.params.get("authorization_id"))
    if auth is None:
        raise ApprovalError("changed", "the authorization no longer exists")
    if authorization_terms(auth) != req.params:
        raise ApprovalError("changed", "the authorization changed after the request")
    if auth.state == AuthorizationState.APPROVED:
        raise ApprovalError("changed", "the authorization is approved already")
    before = snapshot(auth, (*AUTH_TERMS, "state"))
    auth.state = AuthorizationState.APPROVED
    auth.approved_by = req.decided_by
    auth.approved_at = req.decided_at
    after = {**snapshot(auth, (*AUTH_TERMS, "state")), **_both(db, req)}
    audit("authorization.approve", "authorization", auth.id, before=before, after=after)
    return {"authorization_id": auth.id, "state": auth.state}


# the terms of an approved authorization a change request may set (person and area are
# never changed: another person or area is another authorization)
CHANGEABLE = ("valid_until", "default_purpose", "schedule")


def change_params(auth: Authorization, proposed: dict[str, Any]) -> dict[str, Any]:
    """A change request for approved ``auth``: its terms now (``before``, which must still
    hold when the change is approved) and the proposed ones (``after``, JSON values)."""
    return {
        "authorization_id": auth.id,
        "before": snapshot(auth, AUTH_TERMS),
        "after": {k: proposed[k] for k in CHANGEABLE},
    }


def _do_authorization_change(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    """Apply an approved change: only if the authorization is still approved on the terms the
    request was made against (anything else in between voids the request)."""
    auth = db.get(Authorization, req.params.get("authorization_id"))
    if auth is None:
        raise ApprovalError("changed", "the authorization no longer exists")
    if auth.state != AuthorizationState.APPROVED:
        raise ApprovalError("changed", "the authorization is no longer approved")
    if snapshot(auth, AUTH_TERMS) != req.params.get("before"):
        raise ApprovalError("changed", "the authorization changed after the request")
    after = req.params["after"]
    before = snapshot(auth, (*AUTH_TERMS, "state"))
    until = after.get("valid_until")
    auth.valid_until = datetime.fromisoformat(until) if until else None
    auth.default_purpose = after.get("default_purpose")
    auth.schedule = after.get("schedule")
    audit(
        "authorization.edit",
        "authorization",
        auth.id,
        before=before,
        after={**snapshot(auth, (*AUTH_TERMS, "state")), **_both(db, req)},
    )
    return {"authorization_id": auth.id, "applied": after}


def _end_sessions(db: Session, operator_id: int) -> None:
    db.execute(
        update(WebSession)
        .where(WebSession.operator_id == operator_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=clock())
    )


# the roles that decide four-eyes steps: making one is itself a four-eyes step, or one
# administrator could make the "second person" they need (a manager account they hold)
APPROVER_ROLES: dict[str, str] = {
    Role.ADMINISTRATOR: ApprovalKind.ADMINISTRATOR,
    Role.MANAGER: ApprovalKind.MANAGER,
}


def _do_administrator(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    role = Role.MANAGER if req.kind == ApprovalKind.MANAGER else Role.ADMINISTRATOR
    op = db.get(Operator, req.params.get("operator_id"))
    if op is None:
        raise ApprovalError("changed", "the operator no longer exists")
    if (op.role, op.active) != (req.params.get("role_before"), req.params.get("active_before")):
        raise ApprovalError("changed", "the operator changed after the request")
    before = snapshot(op, ("username", "role", "active"))
    op.role, op.active = role, True
    _end_sessions(db, op.id)  # a new role takes effect at the next sign-in (with MFA)
    after = {**snapshot(op, ("username", "role", "active")), **_both(db, req)}
    audit(req.kind, "operator", op.id, before=before, after=after)
    return {"operator_id": op.id, "role": op.role}


RETENTION_KEYS = (CONTRACT_END, RETENTION_YEARS)


def ask_administrator(op: Operator, role: str = Role.ADMINISTRATOR) -> ApprovalRequest | None:
    """Ask for ``op`` to become an active administrator or manager (``role``: created,
    promoted or reactivated)."""
    params = {
        "operator_id": op.id,
        "username": op.username,
        "role_before": op.role,
        "active_before": op.active,
    }
    return ask(APPROVER_ROLES[role], params, request.form.get("reason") or None)


def ask_retention(key: str, value: Any) -> ApprovalRequest | None:
    """Ask for a new contract end or retention period from the settings form."""
    try:
        check_setting(key, value)
    except SettingError as exc:
        flash(_("The value is not valid: %(why)s", why=str(exc)), "error")
        return None
    return ask(ApprovalKind.RETENTION, retention_params({key: value}, "console"))


def retention_params(values: dict[str, Any], channel: str) -> dict[str, Any]:
    return {**values, "channel": channel}


def apply_retention(db: Session, params: dict[str, Any], people: dict[str, Any]) -> dict[str, Any]:
    """Set the contract end and/or retention years (db.settings checks the values)."""
    changed = {}
    for key in (CONTRACT_END, RETENTION_YEARS):
        if key not in params:
            continue
        before = stored_value(db, key)
        try:
            set_setting(db, key, params[key])
        except SettingError as exc:
            raise ApprovalError("bad_value", str(exc)) from None
        audit(
            "setting.update",
            "setting",
            key,
            before={"value": before},
            after={"value": params[key], **people},
        )
        changed[key] = params[key]
    return changed


def _do_retention(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    return apply_retention(db, req.params, _both(db, req))


def _do_unlock(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    cred = db.get(Credential, req.params.get("credential_id"))
    if cred is None or cred.state != CredentialState.LOCKED:
        raise ApprovalError("changed", "the card is no longer locked")
    before = snapshot(cred, ("state", "failed_pin_count"))
    cred.state = CredentialState.ACTIVE
    cred.failed_pin_count = 0
    after = {**snapshot(cred, ("state", "failed_pin_count")), **_both(db, req)}
    audit("credential.unlock", "credential", cred.id, before=before, after=after)
    return {"credential_id": cred.id, "state": cred.state}


def _do_mfa_reset(db: Session, req: ApprovalRequest) -> dict[str, Any]:
    op = db.get(Operator, req.params.get("operator_id"))
    if op is None:
        raise ApprovalError("changed", "the operator no longer exists")
    had = totp.remove_enrolment(db, op.id)
    _end_sessions(db, op.id)
    # a reset means the factor may be in someone else's hands: what was made while it was
    # (the operator's API tokens) ends too, as with a password reset
    tokens = revoke_operator_tokens(db, op.id)
    audit(
        "mfa.reset",
        "operator",
        op.id,
        before={"method": "totp" if had else None},
        after={"method": None, "api_tokens_revoked": tokens, **_both(db, req)},
    )
    return {"operator_id": op.id, "removed": had}


EXECUTORS: dict[str, Callable[[Session, ApprovalRequest], dict[str, Any]]] = {
    ApprovalKind.AUTHORIZATION: _do_authorization,
    ApprovalKind.AUTHORIZATION_CHANGE: _do_authorization_change,
    ApprovalKind.ADMINISTRATOR: _do_administrator,
    ApprovalKind.MANAGER: _do_administrator,
    ApprovalKind.RETENTION: _do_retention,
    ApprovalKind.UNLOCK: _do_unlock,
    ApprovalKind.MFA_RESET: _do_mfa_reset,
}


def approve_and_carry_out(request_id: int, note: str | None) -> bool:
    """Approve as the signed-in operator; the console's kinds are carried out at once.
    Commits on success, rolls back (and flashes why) on refusal."""
    db = get_session()
    try:
        req = four_eyes.decide(
            db, request_id, actor(), True, note, now=clock(), remote_addr=request.remote_addr
        )
        if four_eyes.is_cli_kind(req):
            db.commit()
            flash(
                _(
                    "Approved. The command line can now carry it out once: --approval %(id)s",
                    id=req.id,
                ),
                "info",
            )
            return True
        result = EXECUTORS[req.kind](db, req)
        four_eyes.mark_done(db, req, result, actor=actor(), now=clock())
    except ApprovalError as exc:
        db.rollback()
        log.info("approval %s refused: %s", request_id, exc.code)
        flash(refusal_text(exc), "error")
        return False
    db.commit()
    flash(_("Approved and carried out."), "info")
    return True


# --- views -----------------------------------------------------------------------------------


@bp.route("/")
@requires("approvals.view")
def index() -> ResponseReturnValue:
    db = get_session()
    if four_eyes.expire_stale(db, clock()):
        db.commit()
    show_all = request.args.get("all") == "1"
    q = select(ApprovalRequest).order_by(ApprovalRequest.id.desc())
    if not show_all:
        q = q.where(ApprovalRequest.state.in_([ApprovalState.PENDING, ApprovalState.APPROVED]))
    rows = db.scalars(q.limit(500)).all()
    names = {op.id: op.display_name for op in db.scalars(select(Operator))}
    return render_template(
        "approvals.html",
        purge_logs=purge_logs(db),
        rows=rows,
        names=names,
        show_all=show_all,
        kind_label=lambda k: KIND_LABELS.get(k, k),
        state_label=lambda s: STATE_LABELS.get(s, s),
        can_decide=lambda r: _can_decide(db, r),
        is_cli=four_eyes.is_cli_kind,
    )


def purge_logs(db: Session) -> list[str]:
    """The chains a purge may be asked for: ``events`` (the default controller's), one
    ``events@ID`` per other controller (registered, owning a door, or having written rows),
    and ``audit``. Each is purged on its own (``nyutai purge --log``)."""
    codes = set(controller_codes(db)) | set(event_chains(db))
    chains = {chain_log(c) for c in codes} - {"events"}
    return ["events", *sorted(chains), "audit"]


def _can_decide(db: Session, req: ApprovalRequest) -> bool:
    if not current_user.can("approvals.decide"):
        return False
    try:
        four_eyes.check_decider(db, req, actor())
    except ApprovalError:
        return False
    return True


def _request_id_or_404(request_id: int) -> int:
    if get_session().get(ApprovalRequest, request_id) is None:
        abort(404)
    return request_id


@bp.route("/<int:request_id>/approve", methods=["POST"])
@requires("approvals.decide")
def approve(request_id: int) -> ResponseReturnValue:
    _request_id_or_404(request_id)
    if (again := needs_reauth(url_for("approvals.index"))) is not None:
        return again
    approve_and_carry_out(request_id, request.form.get("note", "")[:REASON_MAX] or None)
    return redirect(url_for("approvals.index"))


@bp.route("/<int:request_id>/reject", methods=["POST"])
@requires("approvals.decide")
def reject(request_id: int) -> ResponseReturnValue:
    _request_id_or_404(request_id)
    if (again := needs_reauth(url_for("approvals.index"))) is not None:
        return again
    note = request.form.get("note", "").strip()[:REASON_MAX]
    if not note:
        flash(_("Give the reason for the rejection."), "error")
        return redirect(url_for("approvals.index"))
    db = get_session()
    try:
        four_eyes.decide(
            db, request_id, actor(), False, note, now=clock(), remote_addr=request.remote_addr
        )
    except ApprovalError as exc:
        db.rollback()
        flash(refusal_text(exc), "error")
        return redirect(url_for("approvals.index"))
    db.commit()
    flash(_("Rejected."), "info")
    return redirect(url_for("approvals.index"))


@bp.route("/<int:request_id>/cancel", methods=["POST"])
@requires("approvals.decide")
def cancel(request_id: int) -> ResponseReturnValue:
    _request_id_or_404(request_id)
    db = get_session()
    try:
        four_eyes.cancel(db, request_id, actor(), now=clock())
    except ApprovalError as exc:
        db.rollback()
        flash(refusal_text(exc), "error")
        return redirect(url_for("approvals.index"))
    db.commit()
    flash(_("The request is withdrawn."), "info")
    return redirect(url_for("approvals.index"))


@bp.route("/new", methods=["POST"])
@requires("approvals.decide")
def new() -> ResponseReturnValue:
    """Ask for an operation the command line carries out: purge, retention, review."""
    if (again := needs_reauth(url_for("approvals.index"))) is not None:
        return again
    f = request.form
    kind = f.get("kind", "")
    reason = f.get("reason", "").strip()[:REASON_MAX]
    params: dict[str, Any]
    try:
        if kind == ApprovalKind.PURGE:
            if f.get("log") not in purge_logs(get_session()):
                raise ValueError("log")
            params = {
                "log": f["log"],
                "before": date.fromisoformat(f.get("before", "")).isoformat(),
            }
        elif kind == ApprovalKind.RETENTION:
            values: dict[str, Any] = {}
            if f.get("contract_end"):
                values[CONTRACT_END] = date.fromisoformat(f["contract_end"]).isoformat()
            if f.get("retention_years"):
                values[RETENTION_YEARS] = int(f["retention_years"])
                if values[RETENTION_YEARS] < 1:
                    raise ValueError("years")
            if not values:
                raise ValueError("nothing")
            params = retention_params(values, "cli")
        elif kind == ApprovalKind.REVIEW:
            target = parse_id(f.get("authorization_id", ""))
            person = parse_id(f.get("person_id", ""))
            if (target is None) == (person is None) or f.get("decision") not in ("keep", "revoke"):
                raise ValueError("review")
            params = {"decision": f["decision"]}
            params.update(
                {"authorization_id": target} if target is not None else {"person_id": person}
            )
        else:
            abort(400)
    except ValueError:
        flash(_("The request is incomplete or a value is not valid."), "error")
        return redirect(url_for("approvals.index"))
    if not reason:
        flash(_("Say why you ask for this."), "error")
        return redirect(url_for("approvals.index"))
    if ask(kind, params, reason) is not None:
        get_session().commit()
    return redirect(url_for("approvals.index"))


@bp.route("/mfa-reset/<int:operator_id>", methods=["POST"])
@requires("approvals.decide")
def mfa_reset(operator_id: int) -> ResponseReturnValue:
    """An administrator asks to remove another operator's second factor (lost phone)."""
    db = get_session()
    op = db.get(Operator, operator_id)
    if op is None:
        abort(404)
    if (again := needs_reauth(url_for("admin.index"))) is not None:
        return again
    if op.id == current_user.id:
        flash(_("Use your own account page to replace your second factor."), "error")
        return redirect(url_for("admin.index"))
    reason = request.form.get("reason", "").strip()[:REASON_MAX]
    if not reason:
        flash(_("Say why you ask for this."), "error")
        return redirect(url_for("admin.index"))
    if ask(ApprovalKind.MFA_RESET, {"operator_id": op.id, "username": op.username}, reason):
        get_session().commit()
    return redirect(url_for("admin.index"))
