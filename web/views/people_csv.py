"""Staff CSV import (upload, preview with per-row problems, confirm) and export.

The upload is kept server-side between preview and confirmation (a random name in the
data directory's ``imports`` folder, remembered in the operator's session with its
SHA-256), so what is confirmed is exactly the file that was previewed.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from db.types import utcnow
from web.audit import audit
from web.db import get_session, session_factory
from web.i18n import site_zone
from web.people_import import SHOWN, Outcome, export_people, import_people
from web.people_words import file_problem_text, row_problem_text
from web.roles import requires

bp = Blueprint("people_csv", __name__, url_prefix="/people/csv")

MAX_UPLOAD = 64 * 1024 * 1024  # 100,000 staff rows are about 10 MB
SESSION_KEY = "people_import"
KEEP_SECONDS = 3600  # an unconfirmed upload is deleted after an hour


def _folder() -> Path:
    site = current_app.config.get("NYUTAI_SITE")
    root = (
        Path(site.data_dir) if site is not None and site.data_dir else Path(tempfile.gettempdir())
    )
    folder = root / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale = time.time() - KEEP_SECONDS  # previews nobody confirmed (personal data: not kept)
    for old in folder.glob("*.csv"):
        try:
            if old.stat().st_mtime < stale:
                old.unlink()
        except OSError:
            pass
    return folder


def _today() -> date:
    return utcnow().astimezone(site_zone()).date()


def _render(outcome: Outcome | None, filename: str | None = None) -> str:
    return render_template(
        "people_import.html",
        outcome=outcome,
        filename=filename,
        shown_max=SHOWN,
        row_problem_text=row_problem_text,
        file_problem_text=file_problem_text,
    )


@bp.route("/import", methods=["GET"])
@requires("people.edit")
def import_form() -> ResponseReturnValue:
    return _render(None)


@bp.route("/import", methods=["POST"])
@requires("people.edit")
def preview() -> ResponseReturnValue:
    request.max_content_length = MAX_UPLOAD
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV file."), "error")
        return redirect(url_for("people_csv.import_form"))
    data = upload.read()
    outcome = import_people(get_session(), data, _today(), apply=False)
    if outcome.ok and outcome.rows:
        token = secrets.token_urlsafe(16)
        (_folder() / f"{token}.csv").write_bytes(data)
        session[SESSION_KEY] = {
            "token": token,
            "sha256": outcome.sha256,
            "name": upload.filename[:200],
        }
    return _render(outcome, upload.filename), 200 if outcome.ok else 400


@bp.route("/import/confirm", methods=["POST"])
@requires("people.edit")
def confirm() -> ResponseReturnValue:
    pending = session.pop(SESSION_KEY, None)
    path = _folder() / f"{pending['token']}.csv" if pending else None
    if pending is None or path is None or request.form.get("sha256") != pending["sha256"]:
        flash(_("Upload the file again: the preview is no longer available."), "error")
        return redirect(url_for("people_csv.import_form"))
    try:
        data = path.read_bytes()
    except OSError:
        flash(_("Upload the file again: the preview is no longer available."), "error")
        return redirect(url_for("people_csv.import_form"))
    path.unlink(missing_ok=True)
    if hashlib.sha256(data).hexdigest() != pending["sha256"]:
        flash(_("Upload the file again: the preview is no longer available."), "error")
        return redirect(url_for("people_csv.import_form"))
    outcome = import_people(
        get_session(),
        data,
        _today(),
        apply=True,
        username=current_user.username,
        operator_id=current_user.id,
        remote_addr=request.remote_addr,
        filename=pending["name"],
    )
    if not outcome.applied:  # someone changed people or cards since the preview
        return _render(outcome, pending["name"]), 409
    flash(
        _(
            "Imported: %(created)d new, %(updated)d updated, %(unchanged)d unchanged.",
            created=outcome.created,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
        ),
        "info",
    )
    return redirect(url_for("people.index"))


@bp.route("/export.csv")
@requires("people.view")
def export() -> ResponseReturnValue:
    locale = str(get_locale() or "ja")
    audit("people.export", "person", None)
    get_session().commit()

    def generate() -> Iterator[str]:
        with session_factory()() as db:
            yield from export_people(db, locale)

    name = f"nyutai-people-{utcnow().astimezone(site_zone()):%Y%m%d-%H%M%S}.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
