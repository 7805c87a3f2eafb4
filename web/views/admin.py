"""Site administration: operators and roles, areas, doors, settings."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db import throttle
from db.models import (
    AntipassbackMode,
    Area,
    Door,
    EscortPolicy,
    OfflineMode,
    Operator,
    Role,
    SiteSetting,
    WebSession,
)
from db.settings import DEFAULTS as SETTING_DEFAULTS
from db.settings import stored_value
from db.types import utcnow
from web.accounts import AccountError, create_operator
from web.approvals import APPROVER_ROLES, RETENTION_KEYS, ask_administrator, ask_retention
from web.audit import audit, snapshot
from web.db import get_session
from web.mfa import status as mfa_status
from web.roles import requires
from web.settings_form import FIELDS as SETTING_FIELDS
from web.ui import DEVICE_KINDS

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger(__name__)
SETTING_KEYS = tuple(SETTING_DEFAULTS)

OPERATOR_FIELDS = ("username", "display_name", "role", "active")
AREA_FIELDS = (
    "name",
    "name_en",
    "permitted_devices",
    "antipassback",
    "escort_policy",
    "visitor_exit_needs_escort",
    "max_visitors_per_escort",
    "two_person_rule",
    "offline",
)


@bp.route("/")
@requires("admin.view")
def index() -> ResponseReturnValue:
    db = get_session()
    operators = db.scalars(select(Operator).order_by(Operator.username)).all()
    return render_template(
        "admin.html",
        mfa_status=mfa_status([o.id for o in operators]),
        operators=operators,
        areas=db.scalars(select(Area).order_by(Area.code)).all(),
        doors=db.scalars(select(Door).order_by(Door.code)).all(),
        settings={r.key: r for r in db.scalars(select(SiteSetting))},
        setting_fields=SETTING_FIELDS,
        setting_values={f.key: stored_value(db, f.key) for f in SETTING_FIELDS},
        setting_pending=_pending_settings(db),
        device_kinds=DEVICE_KINDS,
        roles=list(Role),
        antipassback_modes=list(AntipassbackMode),
        escort_policies=list(EscortPolicy),
    )


def _pending_settings(db: Session) -> dict[str, list[Any]]:
    """Setting changes waiting for a second person: key -> the values asked for."""
    from db.models import ApprovalKind, ApprovalRequest, ApprovalState

    pending: dict[str, list[Any]] = {}
    for params in db.scalars(
        select(ApprovalRequest.params).where(
            ApprovalRequest.kind == ApprovalKind.RETENTION,
            ApprovalRequest.state == ApprovalState.PENDING,
        )
    ):
        for key, value in (params or {}).items():
            if key in SETTING_KEYS:
                pending.setdefault(key, []).append(value)
    return pending


@bp.route("/operators", methods=["POST"])
@requires("admin.edit")
def operator_create() -> ResponseReturnValue:
    db = get_session()
    actor = db.get(Operator, current_user.id)
    try:
        op = create_operator(
            db,
            request.form.get("username", ""),
            request.form.get("role", ""),
            request.form.get("password", ""),
            request.form.get("display_name", "").strip() or None,
            actor=actor,
        )
    except AccountError as exc:
        db.rollback()
        flash(_("The operator was not created: %(why)s", why=str(exc)), "error")
        return redirect(url_for("admin.index"))
    if op.role in APPROVER_ROLES:  # four eyes: inactive until a second person approves
        op.active = False
        if ask_administrator(op, op.role) is None:
            db.rollback()
        else:
            db.commit()
        return redirect(url_for("admin.index"))
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


@bp.route("/operators/<int:operator_id>", methods=["POST"])
@requires("admin.edit")
def operator_update(operator_id: int) -> ResponseReturnValue:
    db = get_session()
    op = db.get(Operator, operator_id)
    if op is None:
        abort(404)
    before = snapshot(op, OPERATOR_FIELDS)
    role = request.form.get("role", op.role)
    if role not in set(Role):
        abort(400)
    active = request.form.get("active") == "1"
    if op.id == current_user.id and (not active or role != Role.ADMINISTRATOR):
        flash(_("You cannot demote or deactivate yourself."), "error")
        return redirect(url_for("admin.index"))
    if role in APPROVER_ROLES and active and (before["role"], op.active) != (role, True):
        # making an administrator or a manager (promotion, reactivation, an administrator
        # made a manager) needs a second person
        if ask_administrator(op, role) is not None:
            db.commit()
        return redirect(url_for("admin.index"))
    op.role, op.active = role, active
    if op.role != before["role"] or not active:
        # a changed role takes effect at once: end the operator's open sessions
        db.execute(
            update(WebSession)
            .where(WebSession.operator_id == op.id, WebSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    audit("operator.update", "operator", op.id, before=before, after=snapshot(op, OPERATOR_FIELDS))
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


@bp.route("/areas/<int:area_id>", methods=["POST"])
@requires("admin.edit")
def area_update(area_id: int) -> ResponseReturnValue:
    db = get_session()
    area = db.get(Area, area_id)
    if area is None:
        abort(404)
    before = snapshot(area, AREA_FIELDS)
    f = request.form
    if f.get("antipassback") not in set(AntipassbackMode) or f.get("escort_policy") not in set(
        EscortPolicy
    ):
        abort(400)
    try:
        max_visitors = int(f.get("max_visitors_per_escort", ""))
    except ValueError:
        max_visitors = 0
    if max_visitors < 1:
        flash(_("At least one visitor per escort."), "error")
        return redirect(url_for("admin.index"))
    if max_visitors > MAX_VISITORS_PER_ESCORT:  # 10**30 overflowed the column: a 500 before
        flash(
            _("At most %(n)s visitors per escort.", n=MAX_VISITORS_PER_ESCORT),
            "error",
        )
        return redirect(url_for("admin.index"))
    area.name = f.get("name", area.name).strip()[:200] or area.name
    area.name_en = f.get("name_en", "").strip()[:200] or None
    devices = _permitted_devices(area)
    if devices is None:
        return redirect(url_for("admin.index"))
    area.permitted_devices = devices
    area.antipassback = f["antipassback"]
    area.escort_policy = f["escort_policy"]
    area.visitor_exit_needs_escort = f.get("visitor_exit_needs_escort") == "1"
    area.two_person_rule = f.get("two_person_rule") == "1"
    # while the controller cannot write to the database: deny everyone, or decide from memory
    area.offline = (
        OfflineMode.FAIL_SECURE if f.get("offline_fail_secure") == "1" else OfflineMode.CACHED
    )
    area.max_visitors_per_escort = max_visitors
    audit("area.update", "area", area.id, before=before, after=snapshot(area, AREA_FIELDS))
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


def _permitted_devices(area: Area) -> list[str] | None:
    """The ticked device kinds (checkboxes; a comma-separated list from scripts too), each one
    of the site's device kinds (web.ui.DEVICE_KINDS) or one the area already permits; None,
    with an error shown, for anything else (nothing is saved)."""
    chosen = {
        d.strip()
        for value in request.form.getlist("permitted_devices")
        for d in value[:1000].split(",")
        if d.strip()
    }
    unknown = chosen - set(DEVICE_KINDS) - set(area.permitted_devices or [])
    if unknown:
        log.info("area %s: unknown device kinds refused (%d)", area.code, len(unknown))
        flash(_("Choose the permitted devices from the list of device kinds."), "error")
        return None
    return sorted(chosen)


# one escort cannot watch more people than this; also keeps the value a small integer
MAX_VISITORS_PER_ESCORT = 20

DOOR_FIELDS = (
    "name",
    "strike_seconds",
    "held_open_seconds",
    "pin_required",
    "pin_timeout_seconds",
    "escort_window_seconds",
    "ask_purpose",
    "snapshot_on_entry",
)
# seconds an administrator may set; outside these a typo would open or lock a door oddly
DOOR_LIMITS = {
    "strike_seconds": (1.0, 60.0),
    "held_open_seconds": (5.0, 3600.0),
    "pin_timeout_seconds": (3.0, 120.0),
    "escort_window_seconds": (3.0, 120.0),
}


@bp.route("/doors/<int:door_id>", methods=["POST"])
@requires("admin.edit")
def door_update(door_id: int) -> ResponseReturnValue:
    db = get_session()
    door = db.get(Door, door_id)
    if door is None:
        abort(404)
    before = snapshot(door, DOOR_FIELDS)
    f = request.form
    values: dict[str, float] = {}
    for key, (low, high) in DOOR_LIMITS.items():
        try:
            values[key] = float(f.get(key, ""))
        except ValueError:
            values[key] = -1.0
        if not low <= values[key] <= high:
            flash(
                _(
                    "%(field)s must be between %(low)s and %(high)s seconds.",
                    field=key,
                    low=low,
                    high=high,
                ),
                "error",
            )
            return redirect(url_for("admin.index"))
    door.name = f.get("name", "").strip()[:200] or door.name
    for key, value in values.items():
        setattr(door, key, value)
    door.pin_required = f.get("pin_required") == "1"
    door.ask_purpose = f.get("ask_purpose") == "1"
    door.snapshot_on_entry = f.get("snapshot_on_entry") == "1"
    audit("door.update", "door", door.id, before=before, after=snapshot(door, DOOR_FIELDS))
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


@bp.route("/operators/<int:operator_id>/password", methods=["POST"])
@requires("admin.edit")
def operator_password(operator_id: int) -> ResponseReturnValue:
    """An administrator sets a new password (e.g. forgotten); the operator's sessions end."""
    from web.accounts import hash_password, password_problem, revoke_operator_tokens

    db = get_session()
    op = db.get(Operator, operator_id)
    if op is None:
        abort(404)
    if op.id == current_user.id:
        # one's own password: the current one first, as on the account page (a session left
        # open must not be enough to take the administrator account over)
        refused = _own_password_refused(op)
        if refused is not None:
            return refused
    password = request.form.get("password", "")
    problem = password_problem(password, op.username)
    if problem:
        flash(_("The password was not changed: %(why)s", why=problem), "error")
        return redirect(url_for("admin.index"))
    op.password_hash = hash_password(password)
    throttle.forget_name(db, op.username)  # the administrator vouches: no delay is left
    db.execute(
        update(WebSession)
        .where(WebSession.operator_id == op.id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # a reset usually means the password may be known: the operator's API tokens end too
    tokens = revoke_operator_tokens(db, op.id)
    audit(
        "operator.password_reset",
        "operator",
        op.id,
        after={"password": "(set)", "api_tokens_revoked": tokens},
    )
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


def _own_password_refused(op: Operator) -> ResponseReturnValue | None:
    """None when the form's ``current`` password is right; else the refusal (throttled
    like sign-in: the same keys as /account)."""
    from web.accounts import verify_password
    from web.auth import client_address

    db = get_session()
    addr, now = client_address(), utcnow()
    wait = throttle.check(db, addr, op.username, now, known_address=True)
    if wait is not None:
        db.commit()
        flash(_("Too many failed attempts. Try again later."), "error")
        return redirect(url_for("admin.index"))
    if not verify_password(op.password_hash, request.form.get("current", "")):
        throttle.record_failure(db, addr, op.username, now)
        audit("password_change_failed", "operator", op.id)
        db.commit()
        flash(_("The current password is wrong."), "error")
        return redirect(url_for("admin.index"))
    return None


@bp.route("/settings", methods=["POST"])
@requires("admin.edit")
def setting_update() -> ResponseReturnValue:
    """Set one site setting through ``db.settings.set_setting``: the same rules as the CLI.

    The value may be typed as JSON (``"2027-03-31"``, ``5``, ``null``) or as plain text.
    """
    import json

    from db.settings import CONTRACT_END, SettingError, normalise_setting, set_setting

    db = get_session()
    key = request.form.get("key", "").strip()[:64]
    raw = request.form.get("value", "").strip()[:1000]
    try:
        value = json.loads(raw)  # scripts may still send JSON ("2027-03-31", 5, null)
    except ValueError:
        value = raw  # what the form's typed fields send: 2027-03-31, 5, 19:30
    if key == CONTRACT_END and value == "":
        if request.form.get("unknown") == "1":
            value = None  # no date and "not known yet" ticked (a typed date wins over the box)
        else:
            # an empty date field is a slip, not "unknown": that has its own checkbox
            flash(
                _("The setting was not saved: %(why)s", why=setting_reason("contract_end_date")),
                "error",
            )
            return redirect(url_for("admin.index"))
    if key in RETENTION_KEYS:  # four eyes: asked here, carried out when approved
        try:
            value = normalise_setting(key, value)
        except SettingError as exc:
            log.info("setting %r not asked for: %s", key, exc.code)
            flash(
                _("The setting was not saved: %(why)s", why=setting_reason(exc.code)),
                "error",
            )
            return redirect(url_for("admin.index"))
        if ask_retention(key, value) is not None:
            db.commit()
        return redirect(url_for("admin.index"))
    before = stored_value(db, key) if key in SETTING_KEYS else None
    try:
        value = set_setting(db, key, value)
    except SettingError as exc:
        db.rollback()
        log.info("setting %r not saved: %s", key, exc.code)
        flash(
            _("The setting was not saved: %(why)s", why=setting_reason(exc.code)),
            "error",
        )
        return redirect(url_for("admin.index"))
    audit("setting.update", "setting", key, before={"value": before}, after={"value": value})
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("admin.index"))


def setting_reason(code: str) -> str:
    """The sentence for a SettingError code (db.settings), in the operator's language."""
    from db.settings import CONTRACT_YEARS, MAX_RETENTION_YEARS, MIN_RETENTION_YEARS

    return {
        "setting_unknown": _(
            "there is no such setting (known: %(keys)s)", keys=", ".join(SETTING_KEYS)
        ),
        "retention_years_range": _(
            "the retention must be a whole number of years from %(low)s to %(high)s",
            low=MIN_RETENTION_YEARS,
            high=MAX_RETENTION_YEARS,
        ),
        "contract_end_date": _(
            "the contract end must be a date between %(low)s and %(high)s, "
            "or marked as not known yet",
            low=CONTRACT_YEARS[0],
            high=CONTRACT_YEARS[1],
        ),
        "end_of_day_time": _("the end of day must be a time HH:MM (00:00 to 23:59)"),
    }.get(code, code)


@bp.route("/tokens")
@requires("admin.view")
def tokens() -> ResponseReturnValue:
    """Every API token: owner, label, created, last used, expiry, state; never the token."""
    from db.models import ApiToken

    db = get_session()
    rows = db.execute(
        select(ApiToken, Operator.username)
        .join(Operator, Operator.id == ApiToken.operator_id)
        .order_by(ApiToken.id.desc())
    ).all()
    return render_template("tokens.html", rows=rows, now=utcnow())


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@requires("admin.edit")
def token_revoke(token_id: int) -> ResponseReturnValue:
    from web.accounts import revoke_api_token

    db = get_session()
    reason = request.form.get("reason", "").strip()[:200]
    if not reason:
        flash(_("Give the reason for revoking the token."), "error")
        return redirect(url_for("admin.tokens"))
    if not revoke_api_token(db, token_id, actor=db.get(Operator, current_user.id), reason=reason):
        abort(404)
    db.commit()
    flash(_("The token is revoked."), "info")
    return redirect(url_for("admin.tokens"))
