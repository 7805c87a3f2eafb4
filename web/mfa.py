"""Multi-factor sign-in and re-authentication for the console.

Sign-in in stages (``web_sessions.stage``): the password opens a session that can do nothing
yet; an operator with TOTP enrolled is at stage ``mfa`` until a code (or a recovery code) is
given; an administrator or manager without TOTP is at stage ``enrol`` and must enrol before
anything else. Only stage ``full`` is signed in (``web.auth`` loads nothing else). A session
not completed within ``PENDING_MINUTES`` ends; ``MAX_FAILURES`` wrong codes end it too (the
password must be given again, under its own throttling).

Re-authentication: the four-eyes steps (``needs_reauth``) want the password or a TOTP code
entered within ``[web] reauth_minutes``; signing in counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from db import throttle
from db.models import Operator, OperatorMfa, Role, SessionStage, WebSession
from db.types import utcnow
from web import totp
from web.accounts import revoke_operator_tokens
from web.audit import audit
from web.auth import client_address, known_address, too_many
from web.clock import now as clock
from web.db import get_session
from web.roles import LOGGED_IN, PUBLIC, requires

log = logging.getLogger(__name__)
bp = Blueprint("mfa", __name__)

# roles that must sign in with a second factor; the others may choose to
MFA_REQUIRED = frozenset({Role.ADMINISTRATOR, Role.MANAGER})
PENDING_MINUTES = 10  # time to type the code (or to enrol) after the password
MAX_FAILURES = 5  # wrong codes per session before the password is asked again
ISSUER = "nyutai"
# endpoints a half-signed-in session may reach; everything else sends it back to its step
_PENDING_OK = frozenset(
    {"mfa.challenge", "mfa.enrol", "auth.login", "auth.language", "auth.logout", "static"}
)


def required_for(role: str) -> bool:
    return role in MFA_REQUIRED


def sign_in_fields(op: Operator, when: datetime) -> dict[str, Any]:
    """The WebSession values for a password that was just found right (web.auth.login)."""
    if totp.enrolment(get_session(), op.id) is not None:
        stage = SessionStage.MFA
    elif required_for(op.role):
        stage = SessionStage.ENROL
    else:
        stage = SessionStage.FULL
    return {"stage": stage, "reauth_at": when if stage == SessionStage.FULL else None}


def continue_sign_in(stage: str, next_url: str | None) -> ResponseReturnValue:
    """Where a half-signed-in operator goes after the password."""
    target = "mfa.challenge" if stage == SessionStage.MFA else "mfa.enrol"
    return redirect(url_for(target, next=next_url or None))


def note_pending(ws: WebSession) -> None:
    """Called by web.auth's loader for a session not yet at stage full."""
    g.nyutai_pending_stage = ws.stage


def pending_redirect() -> ResponseReturnValue | None:
    """A half-signed-in session asking for another page is sent back to its step."""
    stage = g.get("nyutai_pending_stage")
    if stage is None or request.endpoint in _PENDING_OK:
        return None
    return continue_sign_in(stage, None)


def _pending() -> tuple[WebSession, Operator] | None:
    """This browser's half-completed sign-in, if it is still within its time."""
    from web.auth import token_hash

    token = session.get("sid")
    if not token:
        return None
    db = get_session()
    row = db.execute(
        select(WebSession, Operator)
        .join(Operator, Operator.id == WebSession.operator_id)
        .where(WebSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    ws, op = row
    if ws.revoked_at is not None or ws.stage == SessionStage.FULL or not op.active:
        return None
    if clock() - ws.created_at > timedelta(minutes=PENDING_MINUTES):
        ws.revoked_at = clock()
        audit("login.second_factor_timeout", "operator", op.id, operator=op)
        db.commit()
        return None
    return ws, op


def _complete(ws: WebSession, op: Operator, how: str) -> None:
    """The second factor is in: the session becomes a full one, under a new cookie value."""
    from web.auth import new_token, token_hash

    when = clock()
    token = new_token()
    ws.token_hash = token_hash(token)  # a fresh id for the signed-in session
    ws.stage = SessionStage.FULL
    ws.reauth_at = when
    ws.last_seen_at = when
    ws.mfa_failures = 0
    audit("login", "operator", op.id, operator=op, after={"second_factor": how})
    get_session().commit()
    keep_locale = session.get("locale")
    session.clear()
    session["sid"] = token
    if keep_locale:
        session["locale"] = keep_locale


def _next() -> str:
    from web.auth import _safe_next

    return _safe_next(request.values.get("next"))


def _failed(ws: WebSession, op: Operator, action: str) -> ResponseReturnValue | None:
    """Count a wrong code (db.throttle, per account and client, and per session); after
    MAX_FAILURES the half session ends (None: keep asking).

    Audit like wrong passwords: the first wrong code for the operator in a window is a row,
    the rest of the window one ``login.code_failed_repeated`` row (db.throttle). A replayed
    code (a right code used already: someone saw it) is always a row of its own."""
    ws.mfa_failures += 1
    first = throttle.record_failure(
        get_session(), client_address(), op.username, utcnow(), scope=throttle.CODE
    )
    if first or action == "login.code_replayed":
        audit(action, "operator", op.id, operator=op, after={"failures": ws.mfa_failures})
    log.info("%s for operator %d from %s", action, op.id, request.remote_addr)
    if ws.mfa_failures >= MAX_FAILURES:
        ws.revoked_at = clock()
        audit("login.second_factor_lockout", "operator", op.id, operator=op)
        get_session().commit()
        session.clear()
        flash(_("Too many wrong codes. Sign in again."), "error")
        return redirect(url_for("auth.login"))
    get_session().commit()
    return None


def _check_code(op_id: int, code: str, recovery: bool = True) -> str | None:
    """'totp' or 'recovery_code' if ``code`` is right (and now spent), else None.
    ``recovery=False``: only a TOTP code counts (a recovery code is not even tried, so it
    is not spent)."""
    db = get_session()
    mfa = totp.enrolment(db, op_id)
    if mfa is None:
        return None
    when = clock()
    if totp.looks_like_recovery_code(code):
        if not recovery:
            return None
        return "recovery_code" if totp.use_recovery_code(db, op_id, code, when) else None
    try:
        seed = totp.unseal(mfa.secret_enc, current_app.secret_key or b"")
    except totp.SeedUnreadable:
        log.error("operator %d: the TOTP seed cannot be decrypted (secret key changed?)", op_id)
        return None
    step = totp.matching_step(seed, code, mfa.last_step, when)
    if step is None or not totp.accept_step(db, op_id, step):
        if totp.is_replay(seed, code, mfa.last_step, when):
            g.nyutai_replay = True
        return None
    return "totp"


def _code_wait(op: Operator, scope: str = throttle.CODE) -> int | None:
    """Seconds this client must wait before its next code (or, for re-authentication, its
    password: ``scope``) for ``op`` is looked at; None to go on (db.throttle). Commits."""
    db = get_session()
    addr, now = client_address(), utcnow()
    throttle.flush_due(db, now)
    wait = throttle.check(
        db, addr, op.username, now, known_address=known_address(op, addr), scope=scope
    )
    db.commit()
    if wait is not None:
        log.info("code for operator %d from %s refused: wait %d s", op.id, addr, wait)
    return wait


@bp.route("/login/mfa", methods=["GET", "POST"])
@requires(PUBLIC)
def challenge() -> ResponseReturnValue:
    """The second step of signing in: a TOTP code or a recovery code."""
    if current_user.is_authenticated:
        return redirect(_next())
    pending = _pending()
    if pending is None or pending[0].stage != SessionStage.MFA:
        return redirect(url_for("auth.login"))
    ws, op = pending
    if request.method == "POST":
        if (wait := _code_wait(op)) is not None:
            # the same answer as a throttled password; the code is not looked at
            return too_many("mfa_challenge.html", wait, next=request.values.get("next"))
        code = request.form.get("code", "")[:64]
        how = _check_code(op.id, code)
        if how is None:
            replay = g.get("nyutai_replay", False)
            done = _failed(ws, op, "login.code_replayed" if replay else "login.code_failed")
            if done is not None:
                return done
            if replay:
                flash(_("This code was used already. Wait for the next one."), "error")
            else:
                flash(_("The code is wrong."), "error")
            return render_template("mfa_challenge.html", next=request.values.get("next")), 401
        throttle.record_success(get_session(), client_address(), op.username, scope=throttle.CODE)
        if how == "recovery_code":
            left = totp.recovery_codes_left(get_session(), op.id)
            audit("mfa.recovery_code_used", "operator", op.id, operator=op, after={"left": left})
            flash(
                _("You signed in with a recovery code; %(n)s are left.", n=left),
                "error" if left <= 2 else "info",
            )
        _complete(ws, op, how)
        return redirect(_next())
    return render_template("mfa_challenge.html", next=request.values.get("next"))


def _enrolling_operator() -> tuple[Operator, WebSession | None] | None:
    """Who is enrolling: a half-signed-in operator made to enrol, or a signed-in one."""
    db = get_session()
    if current_user.is_authenticated and not current_user.via_token:
        op = db.get(Operator, current_user.id)
        return (op, None) if op is not None else None
    pending = _pending()
    if pending is None or pending[0].stage != SessionStage.ENROL:
        return None
    ws, op = pending
    return op, ws


@bp.route("/mfa/enrol", methods=["GET", "POST"])
@requires(PUBLIC)
def enrol() -> ResponseReturnValue:
    """Show a new seed as a QR code; a right code from the app confirms the enrolment."""
    who = _enrolling_operator()
    if who is None:
        return redirect(url_for("auth.login"))
    op, ws = who
    db = get_session()
    key = current_app.secret_key or b""
    # replacing a working factor is a sensitive change: prove it is you first
    if ws is None and totp.enrolment(db, op.id) is not None and (again := needs_reauth()):
        return again
    if request.method == "POST" and "mfa_seed" in session:
        try:
            seed = totp.unseal(session["mfa_seed"], key)
        except totp.SeedUnreadable:
            seed = ""
        when = clock()
        step = totp.matching_step(seed, request.form.get("code", "")[:64], None, when)
        if step is None:
            flash(_("The code is wrong. Check the clock of the phone and try again."), "error")
            return redirect(url_for("mfa.enrol", next=request.values.get("next") or None))
        replacing = totp.enrolment(db, op.id) is not None
        totp.store_enrolment(db, op.id, seed, key, when, last_step=step)
        codes = totp.new_recovery_codes(db, op.id, when)
        session.pop("mfa_seed", None)
        # a replaced factor may be a lost phone: tokens made under the old one end with it
        revoked = revoke_operator_tokens(db, op.id) if replacing else 0
        audit(
            "mfa.reenrol" if replacing else "mfa.enrol",
            "operator",
            op.id,
            operator=op,
            after={
                "method": "totp",
                "recovery_codes": len(codes),
                **({"api_tokens_revoked": revoked} if replacing else {}),
            },
        )
        if ws is not None:
            _complete(ws, op, "enrolled")
        else:
            db.commit()
        return render_template(
            "mfa_recovery_codes.html", codes=codes, next_url=_next(), enrolled=True
        )
    # a new seed each time the page is shown; kept sealed in the signed cookie until confirmed
    seed = totp.new_seed()
    session["mfa_seed"] = totp.seal(seed, key)
    uri = totp.provisioning_uri(seed, op.username, _issuer())
    return render_template(
        "mfa_enrol.html",
        qr=totp.qr_data_uri(uri),
        seed=" ".join(seed[i : i + 4] for i in range(0, len(seed), 4)),
        forced=ws is not None,
        next=request.values.get("next"),
    )


def _issuer() -> str:
    site = current_app.config.get("NYUTAI_SITE")
    name = getattr(getattr(site, "site", None), "name", "") or ""
    return f"{ISSUER} {name}".strip() if name and name != ISSUER else ISSUER


@bp.route("/mfa/disable", methods=["POST"])
@requires(LOGGED_IN)
def disable() -> ResponseReturnValue:
    """Guards and auditors may turn their optional second factor off again."""
    if current_user.via_token:
        abort(403)
    if required_for(current_user.role):
        flash(_("Administrators and managers must keep a second factor."), "error")
        return redirect(url_for("auth.account"))
    if (again := needs_reauth(url_for("auth.account"))) is not None:
        return again
    db = get_session()
    if totp.remove_enrolment(db, current_user.id):
        # the factor that guarded them is gone: so are the operator's API tokens
        revoked = revoke_operator_tokens(db, current_user.id)
        audit(
            "mfa.disable",
            "operator",
            current_user.id,
            before={"method": "totp"},
            after={"api_tokens_revoked": revoked},
        )
        db.commit()
        flash(_("The second factor is turned off."), "info")
    return redirect(url_for("auth.account"))


@bp.route("/mfa/recovery-codes", methods=["POST"])
@requires(LOGGED_IN)
def recovery_codes() -> ResponseReturnValue:
    """A fresh set of recovery codes (the old ones stop working); shown once."""
    if current_user.via_token:
        abort(403)
    if (again := needs_reauth(url_for("auth.account"))) is not None:
        return again
    db = get_session()
    if totp.enrolment(db, current_user.id) is None:
        return redirect(url_for("auth.account"))
    codes = totp.new_recovery_codes(db, current_user.id, clock())
    audit("mfa.recovery_codes_renewed", "operator", current_user.id, after={"count": len(codes)})
    db.commit()
    return render_template(
        "mfa_recovery_codes.html",
        codes=codes,
        next_url=url_for("auth.account"),
        enrolled=False,
    )


# --- re-authentication ----------------------------------------------------------------


def _this_session() -> WebSession | None:
    sid = getattr(current_user, "session_id", None)
    return get_session().get(WebSession, sid) if sid is not None else None


def recently_authenticated() -> bool:
    ws = _this_session()
    if ws is None or ws.reauth_at is None:
        return False
    window = timedelta(minutes=current_app.config["NYUTAI_REAUTH_MINUTES"])
    return clock() - ws.reauth_at <= window


def needs_reauth(back: str | None = None) -> ResponseReturnValue | None:
    """None if the operator proved who they are recently; else the way to the prompt.

    A POST cannot be replayed after the prompt, so the operator returns to ``back`` (the
    page the form was on) and repeats the action."""
    if current_user.via_token:
        abort(403)
    if recently_authenticated():
        return None
    if back is None:
        back = request.full_path if request.method == "GET" else _referrer_path()
    flash(_("Confirm it is you (password or code), then repeat the action."), "info")
    return redirect(url_for("mfa.reauth", next=back))


def _referrer_path() -> str | None:
    from urllib.parse import urlsplit

    ref = request.referrer
    if not ref:
        return None
    parts = urlsplit(ref)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/reauth", methods=["GET", "POST"])
@requires(LOGGED_IN)
def reauth() -> ResponseReturnValue:
    """Confirm identity with the password or a TOTP code before a four-eyes step."""
    if current_user.via_token:
        abort(403)
    db = get_session()
    ws = _this_session()
    op = db.get(Operator, current_user.id)
    if ws is None or op is None:
        abort(403)
    enrolled = totp.enrolment(db, op.id) is not None
    if request.method == "POST":
        from web.accounts import verify_password

        password, code = request.form.get("password", ""), request.form.get("code", "")[:64]
        # counted like sign-in (db.throttle): codes under the codes' keys, passwords under
        # the passwords' keys, so a borrowed session guesses no faster than the login page
        scope = throttle.CODE if code and enrolled else throttle.PASSWORD
        if (wait := _code_wait(op, scope)) is not None:
            return too_many("reauth.html", wait, enrolled=enrolled, next=request.values.get("next"))
        if code and enrolled:
            ok = _check_code(op.id, code, recovery=False) == "totp"  # not for recovery codes
        else:
            ok = bool(password) and verify_password(op.password_hash, password[:1024])
        addr = client_address()
        if ok:
            throttle.record_success(db, addr, op.username, scope=scope)
            ws.reauth_at = clock()
            ws.mfa_failures = 0
            audit("reauth", "operator", op.id, after={"with": "code" if code else "password"})
            db.commit()
            return redirect(_next())
        ws.mfa_failures += 1
        if throttle.record_failure(db, addr, op.username, utcnow(), scope=scope):
            audit("reauth_failed", "operator", op.id, after={"failures": ws.mfa_failures})
        if ws.mfa_failures >= MAX_FAILURES:
            ws.revoked_at = clock()
            db.commit()
            session.clear()
            flash(_("Too many wrong attempts. Sign in again."), "error")
            return redirect(url_for("auth.login"))
        db.commit()
        flash(_("That was not right. Try again."), "error")
        return render_template(
            "reauth.html", enrolled=enrolled, next=request.values.get("next")
        ), 401
    return render_template("reauth.html", enrolled=enrolled, next=request.values.get("next"))


def status(operator_ids: list[int]) -> dict[int, bool]:
    """Operator id -> has a confirmed second factor (for the administration page)."""
    if not operator_ids:
        return {}
    rows = get_session().scalars(
        select(OperatorMfa.operator_id).where(
            OperatorMfa.operator_id.in_(operator_ids), OperatorMfa.enrolled_at.is_not(None)
        )
    )
    found = set(rows)
    return {i: i in found for i in operator_ids}
