"""Login, logout, server-side sessions, API tokens and the central permission check."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Request,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf import FlaskForm
from sqlalchemy import select, update
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from db import throttle
from db.models import ApiToken, Operator, SessionStage, WebSession
from db.types import utcnow
from web.accounts import hash_password, needs_rehash, verify_password
from web.audit import audit
from web.clock import now as clock
from web.db import get_session
from web.roles import LOGGED_IN, PUBLIC, allowed, requires

log = logging.getLogger(__name__)

# last_seen_at is written at most this often, so busy pages do not write on every request
SEEN_RESOLUTION = timedelta(seconds=30)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


@dataclass
class CurrentOperator(UserMixin):
    """The signed-in operator as plain values (no ORM object outlives the request session)."""

    id: int
    username: str
    display_name: str
    role: str
    locale: str
    session_id: int | None = None  # WebSession row; None for API tokens
    via_token: bool = False
    token_id: int | None = None  # the ApiToken row when signed in by a token

    def get_id(self) -> str:
        return str(self.id)

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def _passive() -> bool:
    """Background polling must not keep an idle session alive."""
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "_nyutai_passive", False))


def passive(view: ViewT) -> ViewT:
    """Mark a polled endpoint: it does not count as operator activity for the idle timeout."""
    view._nyutai_passive = True  # type: ignore[attr-defined]
    return view


@login_manager.request_loader
def _load(req: Request) -> CurrentOperator | None:
    if req.path.startswith("/api/"):
        return _load_api_token(req.headers.get("Authorization", ""))
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
        session.clear()
        return None
    ws, op = row
    now = clock()
    idle = timedelta(minutes=current_app.config["NYUTAI_IDLE_TIMEOUT_MINUTES"])
    if ws.revoked_at is not None or not op.active:
        session.clear()
        return None
    if ws.stage != SessionStage.FULL:  # password given, second factor not yet (web.mfa)
        from web import mfa

        mfa.note_pending(ws)
        return None
    lifetime = timedelta(hours=current_app.config["NYUTAI_SESSION_LIFETIME_HOURS"])
    expired = "idle" if now - ws.last_seen_at > idle else None
    if now - ws.created_at > lifetime:
        expired = "lifetime"  # however active: an absolute end (ASVS 3.3.1)
    if expired:
        ws.revoked_at = now
        audit("session_expired", "operator", op.id, operator=op, after={"why": expired})
        db.commit()
        session.clear()
        return None
    if not _passive() and now - ws.last_seen_at > SEEN_RESOLUTION:
        ws.last_seen_at = now
        db.commit()
    return CurrentOperator(op.id, op.username, op.display_name, op.role, op.locale, ws.id)


def _load_api_token(header: str) -> CurrentOperator | None:
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    db = get_session()
    row = db.execute(
        select(ApiToken, Operator)
        .join(Operator, Operator.id == ApiToken.operator_id)
        .where(ApiToken.token_hash == token_hash(token.strip()))
    ).first()
    if row is None:
        return None
    tok, op = row
    now = utcnow()
    if tok.revoked_at is not None or tok.expires_at <= now or not op.active:
        return None
    if tok.last_used_at is None or now - tok.last_used_at > SEEN_RESOLUTION:
        tok.last_used_at = now
        db.commit()
    return CurrentOperator(
        op.id, op.username, op.display_name, op.role, op.locale, via_token=True, token_id=tok.id
    )


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        abort(401)
    from web import mfa

    if (pending := mfa.pending_redirect()) is not None:
        return pending
    return redirect(
        url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    )


def check_permission() -> None:
    """before_request: the endpoint's declared permission against the operator's role."""
    endpoint = request.endpoint
    if endpoint is None:
        return  # 404/405 handled by Flask
    if endpoint == "static":
        return
    view = current_app.view_functions.get(endpoint)
    permission = getattr(view, "_nyutai_permission", None)
    if permission is None:
        log.error("endpoint %s declares no permission: refused", endpoint)
        abort(403)
    if permission == PUBLIC:
        return
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if permission != LOGGED_IN and not current_user.can(permission):
        abort(403)
    return None


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side rows instead
    app.before_request(check_permission)
    app.register_blueprint(bp)


class LoginForm(FlaskForm):
    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=1024)])


def client_address() -> str:
    """The client's address (the proxy's X-Forwarded-For when it is trusted, web.proxy)."""
    return (request.remote_addr or "unknown")[:64]


def known_address(op: Operator | None, addr: str) -> bool:
    """Has ``op`` signed in from ``addr`` recently? Then a distributed guesser slowing the
    name down does not keep them out (db.throttle). Only completed sign-ins count: a session
    that got no further than the password (someone who knows it, without the second factor)
    must not make the guesser's address a known one."""
    if op is None:
        return False
    since = utcnow() - timedelta(days=throttle.KNOWN_ADDRESS_DAYS)
    found = get_session().scalar(
        select(WebSession.id)
        .where(
            WebSession.operator_id == op.id,
            WebSession.remote_addr == addr,
            WebSession.created_at >= since,
            WebSession.stage == SessionStage.FULL,
        )
        .limit(1)
    )
    return found is not None


def too_many(template: str, wait: int, **context: Any) -> ResponseReturnValue:
    """429 with Retry-After: the page again, saying to wait (flashed before rendering)."""
    flash(_("Too many failed attempts. Try again later."), "error")
    resp = make_response(render_template(template, **context), 429)
    resp.headers["Retry-After"] = str(wait)
    return resp


def _safe_next(target: str | None) -> str:
    # only same-site paths, judged as the browser will read them (web.redirects)
    from web.redirects import safe_path

    return safe_path(target) or url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        db = get_session()
        username = form.username.data.strip()
        addr = client_address()
        now = utcnow()
        throttle.flush_due(db, now)
        # commit before argon2 runs: no transaction (on SQLite: no write lock) may stay open
        # during the password check, or concurrent sign-ins queue behind it
        db.commit()
        op = db.scalar(select(Operator).where(Operator.username == username))
        wait = throttle.check(db, addr, username, now, known_address=known_address(op, addr))
        if wait is not None:
            # the same answer for every name, known or not; the password is not looked at
            db.commit()
            log.info("sign-in for %r from %s refused: wait %d s", username[:64], addr, wait)
            return too_many("login.html", wait, form=form)
        ok = verify_password(op.password_hash if op else None, form.password.data)
        if not ok or op is None or not op.active:
            if throttle.record_failure(db, addr, username, now):
                audit("login_failed", "operator", op.id if op else None, username=username[:64])
            db.commit()
            log.info("failed login for %r from %s", username[:64], addr)
            flash(_("The user name or password is wrong."), "error")
            return render_template("login.html", form=form), 401
        if needs_rehash(op.password_hash):
            op.password_hash = hash_password(form.password.data)
        throttle.record_success(db, addr, username)
        op.last_login_at = now
        token = new_token()
        from web import mfa  # the second factor's stage (web/mfa.py)

        stage = mfa.sign_in_fields(op, now)
        db.add(
            WebSession(
                token_hash=token_hash(token),
                operator_id=op.id,
                last_seen_at=now,
                remote_addr=addr,
                **stage,
            )
        )
        full = stage["stage"] == SessionStage.FULL
        audit("login" if full else "login.password_ok", "operator", op.id, operator=op)
        db.commit()
        # a fresh session (new id, new CSRF token) so a planted cookie is worth nothing
        keep_locale = session.get("locale")
        session.clear()
        session["sid"] = token
        if keep_locale:
            session["locale"] = keep_locale
        if not full:
            return mfa.continue_sign_in(stage["stage"], request.args.get("next"))
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@requires(LOGGED_IN)
def logout() -> ResponseReturnValue:
    db = get_session()
    if current_user.session_id is not None:
        ws = db.get(WebSession, current_user.session_id)
        if ws is not None:
            ws.revoked_at = utcnow()
    audit("logout", "operator", current_user.id)
    db.commit()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
@requires(PUBLIC)
def language() -> ResponseReturnValue:
    code = request.form.get("locale", "")
    if code in current_app.config["NYUTAI_LOCALES"]:
        session["locale"] = code
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/account", methods=["GET", "POST"])
@requires(LOGGED_IN)
def account() -> ResponseReturnValue:
    """The operator's own password: current one, then the new one twice."""
    from web.accounts import password_problem, revoke_operator_tokens

    if request.method == "POST":
        if current_user.via_token:
            abort(403)
        db = get_session()
        op = db.get(Operator, current_user.id)
        assert op is not None
        current, new, again = (request.form.get(k, "") for k in ("current", "new", "again"))
        addr, now = client_address(), utcnow()
        # guessing the current password with a borrowed session waits like sign-in does
        wait = throttle.check(db, addr, op.username, now, known_address=True)
        if wait is not None:
            db.commit()
            return too_many("account.html", wait)
        if not verify_password(op.password_hash, current):
            throttle.record_failure(db, addr, op.username, now)
            audit("password_change_failed", "operator", op.id)
            db.commit()
            flash(_("The current password is wrong."), "error")
        elif new != again:
            flash(_("The two new passwords differ."), "error")
        elif (problem := password_problem(new, op.username)) is not None:
            flash(_("The password was not changed: %(why)s", why=problem), "error")
        else:
            op.password_hash = hash_password(new)
            # API tokens end too: they would otherwise outlive a password thought known
            tokens = revoke_operator_tokens(db, op.id)
            # other sessions (another PC, a stolen cookie) end; this one stays
            db.execute(
                update(WebSession)
                .where(
                    WebSession.operator_id == op.id,
                    WebSession.id != current_user.session_id,
                    WebSession.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            audit(
                "password_change",
                "operator",
                op.id,
                after={"password": "(set)", "api_tokens_revoked": tokens},
            )
            db.commit()
            flash(_("Your password is changed."), "info")
        return redirect(url_for("auth.account"))
    from web import mfa, totp

    return render_template(
        "account.html",
        mfa_enrolled=totp.enrolment(get_session(), current_user.id) is not None,
        mfa_required=mfa.required_for(current_user.role),
        recovery_left=totp.recovery_codes_left(get_session(), current_user.id),
    )
