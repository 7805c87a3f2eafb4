"""Who may enter where: the authorization list per area and per person, approve, revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from db.models import (
    Area,
    Authorization,
    AuthorizationState,
    Decision,
    Direction,
    Event,
    Person,
    PersonKind,
)
from db.types import utcnow
from domain.training import training_state, valid_through
from web.audit import audit, snapshot
from web.db import get_session
from web.eligibility import last_trainings
from web.i18n import site_zone
from web.ids import parse_id
from web.roles import requires
from web.schedule import ScheduleError, parse_schedule

bp = Blueprint("authorizations", __name__, url_prefix="/authorizations")

FIELDS = (
    "person_id",
    "area_id",
    "valid_from",
    "valid_until",
    "default_purpose",
    "schedule",
    "state",
)


def _int_arg(name: str) -> int | None:
    return parse_id(request.args.get(name, ""))


@bp.route("/")
@requires("authorizations.view")
def index() -> ResponseReturnValue:
    db = get_session()
    area_id, person_id = _int_arg("area"), _int_arg("person")
    q = select(Authorization).options(
        joinedload(Authorization.person), joinedload(Authorization.area)
    )
    if area_id is not None:
        q = q.where(Authorization.area_id == area_id)
    if person_id is not None:
        q = q.where(Authorization.person_id == person_id)
    auths = list(db.scalars(q.order_by(Authorization.area_id, Authorization.person_id)).unique())
    person_ids = list({a.person_id for a in auths})
    trained = last_trainings(db, person_ids)
    last_entry = {
        (pid, aid): t
        for pid, aid, t in db.execute(
            select(Event.person_id, Event.area_id, func.max(Event.occurred_at))
            .where(
                Event.person_id.in_(person_ids),
                Event.decision == Decision.GRANTED,
                Event.direction == Direction.IN,
            )
            .group_by(Event.person_id, Event.area_id)
        )
    }
    now = utcnow()
    today = now.astimezone(site_zone()).date()
    rows = []
    for a in auths:
        last = trained.get(a.person_id)
        rows.append(
            {
                "auth": a,
                "training": training_state(last, today),
                "training_last": last,
                "training_expiry": valid_through(last) if last else None,
                "last_entry": _aware(last_entry.get((a.person_id, a.area_id))),
                "expired": a.valid_until is not None and a.valid_until <= now,
            }
        )
    return render_template(
        "authorizations.html",
        rows=rows,
        areas=db.scalars(select(Area).order_by(Area.code)).all(),
        people=db.scalars(
            select(Person)
            .where(Person.kind == PersonKind.STAFF, Person.active.is_(True))
            .order_by(Person.name)
        ).all(),
        area_id=area_id,
        person_id=person_id,
    )


def _aware(t: datetime | None) -> datetime | None:
    # func.max bypasses the column type on SQLite and returns naive UTC (or a string)
    if t is None:
        return None
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _local_date(value: str, end: bool) -> datetime | None:
    if not value:
        return None
    d = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=site_zone())
    if end:  # "until 2026-03-31" means through the end of that day
        d = d.replace(hour=23, minute=59, second=59)
    return d.astimezone(UTC)


def _ends_before_start(start: datetime | None, end: datetime | None) -> bool:
    # an authorization that ends before it starts could never open a door, yet it was
    # approvable and listed as valid: refuse it at the form
    return start is not None and end is not None and end < start


@bp.route("/new", methods=["POST"])
@requires("authorizations.edit")
def create() -> ResponseReturnValue:
    db = get_session()
    person_id, area_id = (
        parse_id(request.form.get("person_id")),
        parse_id(request.form.get("area_id")),
    )
    person = db.get(Person, person_id) if person_id is not None else None
    area = db.get(Area, area_id) if area_id is not None else None
    if person is None or area is None or person.kind != PersonKind.STAFF:
        flash(_("Choose a staff member and an area."), "error")
        return redirect(url_for("authorizations.index"))
    try:
        valid_from = _local_date(request.form.get("valid_from", ""), end=False)
        valid_until = _local_date(request.form.get("valid_until", ""), end=True)
    except ValueError:
        flash(_("Dates must look like 2026-04-01."), "error")
        return redirect(url_for("authorizations.index"))
    if _ends_before_start(valid_from, valid_until):
        flash(_("The end of the validity is before its start."), "error")
        return redirect(url_for("authorizations.index"))
    try:
        schedule = parse_schedule(request.form.get("schedule", ""))
    except ScheduleError as exc:
        flash(_("The schedule is not understood near: %(part)s", part=str(exc)), "error")
        return redirect(url_for("authorizations.index"))
    auth = Authorization(
        person_id=person.id,
        area_id=area.id,
        valid_from=valid_from,
        valid_until=valid_until,
        default_purpose=(request.form.get("default_purpose") or "").strip()[:200] or None,
        schedule=schedule,
        state=AuthorizationState.PENDING,
    )
    db.add(auth)
    db.flush()
    audit("authorization.create", "authorization", auth.id, after=snapshot(auth, FIELDS))
    db.commit()
    flash(_("The authorization waits for approval."), "info")
    return redirect(url_for("authorizations.index", area=area.id))


def _change(auth_id: int, state: AuthorizationState, action: str) -> ResponseReturnValue:
    db = get_session()
    auth = db.get(Authorization, auth_id)
    if auth is None:
        abort(404)
    if state == AuthorizationState.APPROVED and _ends_before_start(
        auth.valid_from, auth.valid_until
    ):  # rows written before the form refused them
        flash(_("The end of the validity is before its start."), "error")
        return redirect(url_for("authorizations.index"))
    before = snapshot(auth, FIELDS)
    auth.state = state
    if state == AuthorizationState.APPROVED:
        flash(_("Approved."), "info")
        auth.approved_by = current_operator_id()
        auth.approved_at = utcnow()
    audit(action, "authorization", auth.id, before=before, after=snapshot(auth, FIELDS))
    db.commit()
    return redirect(request.referrer or url_for("authorizations.index"))


def current_operator_id() -> int:
    from flask_login import current_user

    return int(current_user.id)


@bp.route("/<int:auth_id>/approve", methods=["POST"])
@requires("authorizations.edit")
def approve(auth_id: int) -> ResponseReturnValue:
    return _change(auth_id, AuthorizationState.APPROVED, "authorization.approve")


@bp.route("/<int:auth_id>/revoke", methods=["POST"])
@requires("authorizations.edit")
def revoke(auth_id: int) -> ResponseReturnValue:
    flash(_("Revoked."), "info")
    return _change(auth_id, AuthorizationState.REVOKED, "authorization.revoke")


@bp.route("/<int:auth_id>/edit", methods=["POST"])
@requires("authorizations.edit")
def edit(auth_id: int) -> ResponseReturnValue:
    db = get_session()
    auth = db.get(Authorization, auth_id)
    if auth is None:
        abort(404)
    before = snapshot(auth, FIELDS)
    try:
        auth.valid_until = _local_date(request.form.get("valid_until", ""), end=True)
    except ValueError:
        db.rollback()
        flash(_("Dates must look like 2026-04-01."), "error")
        return redirect(url_for("authorizations.index"))
    if _ends_before_start(auth.valid_from, auth.valid_until):
        db.rollback()
        flash(_("The end of the validity is before its start."), "error")
        return redirect(url_for("authorizations.index"))
    auth.default_purpose = (request.form.get("default_purpose") or "").strip()[:200] or None
    try:
        auth.schedule = parse_schedule(request.form.get("schedule", ""))
    except ScheduleError as exc:
        db.rollback()
        flash(_("The schedule is not understood near: %(part)s", part=str(exc)), "error")
        return redirect(url_for("authorizations.index"))
    audit(
        "authorization.edit", "authorization", auth.id, before=before, after=snapshot(auth, FIELDS)
    )
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("authorizations.index", area=auth.area_id))
