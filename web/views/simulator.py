"""Demo only: a panel that acts on the simulated readers and doors through commands."""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.commands import CommandKind, enqueue
from db.models import Credential, CredentialState, Door, Technology
from web.audit import audit
from web.db import get_session
from web.roles import requires

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

_KEYS = re.compile(r"^[0-9*#]{1,16}$")


@bp.before_request
def _demo_only() -> None:
    if not current_app.config["NYUTAI_DEMO"]:
        abort(404)


def _doors() -> list[Door]:
    return list(get_session().scalars(select(Door).order_by(Door.code)))


def _readers() -> set[str]:
    return {r for d in _doors() for r in (d.entry_reader, d.exit_reader) if r}


@bp.route("/")
@requires("simulator.use")
def index() -> ResponseReturnValue:
    cards = (
        get_session()
        .scalars(
            select(Credential)
            .options(joinedload(Credential.person))
            .where(Credential.state == CredentialState.ACTIVE, Credential.person_id.is_not(None))
            .order_by(Credential.id)
            .limit(40)
        )
        .all()
    )
    return render_template("simulator.html", doors=_doors(), cards=cards)


def _done(
    kind: CommandKind, payload: Mapping[str, object], shown: Mapping[str, object]
) -> ResponseReturnValue:
    db = get_session()
    cmd = enqueue(db, kind, dict(payload), current_user.id)
    audit(f"simulator.{kind.value}", "command", cmd.id, after=dict(shown))
    db.commit()
    flash(_("Sent to the simulated hardware."), "info")
    return redirect(url_for("simulator.index"))


@bp.route("/tap", methods=["POST"])
@requires("simulator.use")
def tap() -> ResponseReturnValue:
    reader = request.form.get("reader", "")
    card = request.form.get("card", "")
    tech, _sep, card_id = card.partition(":")
    if reader not in _readers() or tech not in set(Technology) or not card_id:
        abort(400)
    payload = {"reader": reader, "card": card_id, "technology": tech}
    return _done(CommandKind.TAP, payload, payload)


@bp.route("/keys", methods=["POST"])
@requires("simulator.use")
def keys() -> ResponseReturnValue:
    reader = request.form.get("reader", "")
    pressed = request.form.get("keys", "").strip()
    if reader not in _readers() or not _KEYS.match(pressed):
        abort(400)
    if not pressed.endswith("#"):
        pressed += "#"
    # the keys may be a PIN: the audit row only says that keys were pressed
    return _done(CommandKind.KEYS, {"reader": reader, "keys": pressed}, {"reader": reader})


def _door_code() -> str:
    code = request.form.get("door", "")
    if code not in {d.code for d in _doors()}:
        abort(400)
    return code


@bp.route("/contact", methods=["POST"])
@requires("simulator.use")
def contact() -> ResponseReturnValue:
    payload = {"door": _door_code(), "open": request.form.get("open") == "1"}
    return _done(CommandKind.CONTACT, payload, payload)


@bp.route("/rex", methods=["POST"])
@requires("simulator.use")
def rex() -> ResponseReturnValue:
    payload = {"door": _door_code()}
    return _done(CommandKind.REX, payload, payload)


@bp.route("/tamper", methods=["POST"])
@requires("simulator.use")
def tamper() -> ResponseReturnValue:
    payload = {"door": _door_code(), "active": request.form.get("active") == "1"}
    return _done(CommandKind.TAMPER, payload, payload)
