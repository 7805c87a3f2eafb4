"""Security headers, cookie flags, CSRF and generic error pages."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from flask import Flask, Response, current_app, make_response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from db.engine import database_unavailable

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
csrf = CSRFProtect()

# No inline script or style anywhere: everything comes from /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)


class SessionInterface(SecureCookieSessionInterface):
    """The cookie gets ``Secure`` whenever the request itself came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def read_or_create_secret(path: Path) -> bytes:
    """The signing key lives in the data directory (0600), created on first start.

    Every console process of a site must sign with the same key (sessions and CSRF tokens
    cross processes behind one proxy). Processes sharing a data directory share the file;
    two starting at once on a fresh one must not each write their own, so the key is
    written to a private temporary file and linked into place: the first link wins and
    everyone reads the winner's key."""
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        short = True
    except FileNotFoundError:
        short = False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(64))
        f.flush()
        os.fsync(f.fileno())
    try:
        if short:
            os.replace(tmp, path)  # a key too short to keep is replaced
        else:
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    os.chmod(path, 0o600)
    return path.read_bytes()


def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "same-origin"
    # the desk takes visitors' photos with this origin's camera (getUserMedia); nothing else
    resp.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        resp.headers["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith("/static/"):
        # personal data must not stay in shared browser caches
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _error_page(code: int, reason: str | None = None) -> tuple[str | dict[str, str], int]:
    titles = {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You do not have permission for this page."),
        404: _("The page was not found."),
        405: _("This action is not allowed here."),
        429: _("Too many requests. Please wait a moment."),
    }
    message = reason or titles.get(code, _("Something went wrong. The error was logged."))
    if request.path.startswith("/api/"):
        return {"error": message}, code
    return render_template("error.html", code=code, message=message), code


def _unavailable(e: DBAPIError) -> ResponseReturnValue:
    """503 while the database is away (a failover, a restart): a page that reads nothing from
    the database, and Retry-After. The pool pings before reuse, so a later request gets a
    connection to whichever server answers then; nothing needs restarting."""
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.path,
        str(e.orig).splitlines()[0] if e.orig else e.__class__.__name__,
    )
    message = _("The database is not answering just now. Please try again in a moment.")
    if request.path.startswith("/api/"):
        resp = make_response({"error": message}, 503)
    else:
        # straight from the Jinja environment: render_template would run the context
        # processors, and Flask-Login's asks the database for the signed-in operator
        page = current_app.jinja_env.get_template("unavailable.html").render(message=message)
        resp = make_response(page, 503)
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    app.after_request(_headers)

    @app.before_request
    def _refuse_nul() -> ResponseReturnValue | None:
        # PostgreSQL refuses NUL in text (a DataError, i.e. a 500, before this); no field of
        # ours means anything with one, so the whole request is refused before any view runs
        for source in (request.args, request.form):
            for key, value in source.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    # the field's name only: the value may be a password
                    log.warning(
                        "refused %s %s: NUL character in field %r",
                        request.method,
                        request.path,
                        key.replace("\x00", "")[:64],
                    )
                    return _error_page(400, _("A field contains a NUL character (not allowed)."))
        return None

    @app.errorhandler(CSRFError)
    def _csrf(_e: CSRFError) -> ResponseReturnValue:
        log.warning("CSRF check failed for %s %s", request.method, request.path)
        return _error_page(400)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> ResponseReturnValue:
        return _error_page(e.code or 500)

    @app.errorhandler(DBAPIError)
    def _database(e: DBAPIError) -> ResponseReturnValue:
        if database_unavailable(e):
            return _unavailable(e)
        return _crash(e)

    @app.errorhandler(Exception)
    def _crash(e: Exception) -> ResponseReturnValue:
        # the trace goes to the server log only; the page says nothing about internals
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_page(500)
