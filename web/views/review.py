"""Access review (section 9): the findings of ``db.review`` (a window per page) and keep/revoke.

The decisions go through ``db.review.record_review`` / ``record_designation_review``,
which check the role again and write the audit rows; this module only collects the form.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from db.models import AccessReview, Operator
from db.review import (
    DECISIONS,
    DESIGNATED_NO_AUTH,
    TRAINING_EXPIRED,
    TRAINING_EXPIRING,
    UNUSED,
    ReviewError,
    ReviewItem,
    authorization_findings,
    designation_findings,
    record_designation_review,
    record_review,
)
from db.types import utcnow
from web.db import get_session
from web.i18n import site_zone
from web.ids import parse_id
from web.roles import requires

log = logging.getLogger(__name__)
bp = Blueprint("review", __name__, url_prefix="/review")

AUTH_FINDINGS = (UNUSED, TRAINING_EXPIRING, TRAINING_EXPIRED)
NOTE_MAX = 1000
PAGE_WINDOW = 200  # authorizations or designated people examined per page
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def detail_text(item: ReviewItem) -> str:
    """The finding's detail in the operator's language (db.review writes it in English)."""
    found = DATE.search(item.detail)
    day = found.group(0) if found else ""
    if item.finding == UNUSED:
        return _("Last entry: %(day)s", day=day) if day else _("Never entered")
    if item.finding in (TRAINING_EXPIRING, TRAINING_EXPIRED):
        return _("Training valid until %(day)s", day=day)
    if item.finding == DESIGNATED_NO_AUTH:
        return _("Designated as handling staff")
    return item.detail


@bp.route("/")
@requires("review.view")
def index() -> ResponseReturnValue:
    db = get_session()
    # one window of authorizations (then of designated people) per page: bounded work per
    # request at any number of authorizations; "next" continues where this page stopped
    now = utcnow()
    items: list[ReviewItem] = []
    cursors: dict[str, str] = {}
    for arg, step in (("after", authorization_findings), ("dafter", designation_findings)):
        value = request.args.get(arg, "")
        if value == "end":
            cursors[arg] = "end"
            continue
        found, nxt = step(db, now, parse_id(value) or 0, PAGE_WINDOW, zone=site_zone())
        items.extend(found)
        cursors[arg] = "end" if nxt is None else str(nxt)
    more = any(v != "end" for v in cursors.values())
    auth_ids = {i.authorization_id for i in items if i.authorization_id is not None}
    last: dict[int, AccessReview] = {}
    if auth_ids:
        for r in db.scalars(
            select(AccessReview)
            .where(AccessReview.authorization_id.in_(auth_ids))
            .order_by(AccessReview.decided_at, AccessReview.id)
        ):
            last[r.authorization_id] = r  # the latest decision wins
    deciders = {op.id: op.display_name for op in db.scalars(select(Operator))}
    return render_template(
        "review.html",
        items=items,
        next_args=cursors if more else None,
        first=bool(request.args),
        last=last,
        deciders=deciders,
        detail_text=detail_text,
        note_max=NOTE_MAX,
    )


def _decision() -> tuple[Operator, str, str | None]:
    decision = request.form.get("decision", "")
    if decision not in DECISIONS:
        abort(400)
    operator = get_session().get(Operator, current_user.id)
    if operator is None:
        abort(403)
    note = request.form.get("note", "").strip()[:NOTE_MAX] or None
    return operator, decision, note


def _done(decision: str) -> ResponseReturnValue:
    get_session().commit()
    if decision == "revoke":
        flash(_("Revoked. The decision is recorded."), "info")
    else:
        flash(_("Kept. The decision is recorded."), "info")
    return redirect(url_for("review.index"))


def _refused(exc: ReviewError) -> ResponseReturnValue:
    get_session().rollback()
    log.info("review decision refused: %s", exc.code)
    if exc.code == "not_manager":
        flash(_("Only a manager can record review decisions."), "error")
    else:
        flash(_("The decision was not recorded: the record no longer exists."), "error")
    return redirect(url_for("review.index"))


@bp.route("/authorizations/<int:auth_id>", methods=["POST"])
@requires("review.decide")
def decide_authorization(auth_id: int) -> ResponseReturnValue:
    operator, decision, note = _decision()
    finding = request.form.get("finding", "")
    if finding not in AUTH_FINDINGS:
        abort(400)
    try:
        record_review(get_session(), operator, auth_id, finding, decision, note)
    except ReviewError as exc:
        return _refused(exc)
    return _done(decision)


@bp.route("/people/<int:person_id>", methods=["POST"])
@requires("review.decide")
def decide_designation(person_id: int) -> ResponseReturnValue:
    operator, decision, note = _decision()
    try:
        record_designation_review(get_session(), operator, person_id, decision, note)
    except ReviewError as exc:
        return _refused(exc)
    return _done(decision)
