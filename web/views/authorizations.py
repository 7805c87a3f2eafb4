"""Who may enter where: the authorization list per area and per person, approve, revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.orm import joinedload

from db import approvals as four_eyes
from db.crossings import entry, event_area
from db.models import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    Area,
    Authorization,
    AuthorizationState,
    Door,
    Event,
    Person,
    PersonKind,
)
from db.types import utcnow
from domain.training import training_state, valid_through
from web import pickers
from web.approvals import (
    CHANGEABLE,
    REASON_MAX,
    approve_and_carry_out,
    ask,
    authorization_terms,
    change_params,
)
from web.audit import audit, snapshot
from web.db import get_session
from web.eligibility import last_trainings
from web.i18n import site_zone
from web.ids import parse_id
from web.mfa import needs_reauth
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


PAGE = 50


def _staff() -> Select[Person]:
    return (
        select(Person)
        .where(Person.kind == PersonKind.STAFF, Person.active.is_(True))
        .order_by(Person.kind, Person.name, Person.id)
    )


def _cursor(value: str) -> tuple[int, int, int] | None:
    parts = [parse_id(x) for x in value.split("_")] if value else []
    if len(parts) != 3 or any(x is None for x in parts):
        return None
    return parts[0], parts[1], parts[2]  # type: ignore[return-value]


@bp.route("/")
@requires("authorizations.view")
def index() -> ResponseReturnValue:
    """One page of authorizations in (area, person) order, keyset-paged like the event log."""
    db = get_session()
    area_id, person_id = _int_arg("area"), _int_arg("person")
    q = select(Authorization).options(
        joinedload(Authorization.person), joinedload(Authorization.area)
    )
    if area_id is not None:
        q = q.where(Authorization.area_id == area_id)
    if person_id is not None:
        q = q.where(Authorization.person_id == person_id)
    if (after := _cursor(request.args.get("after", ""))) is not None:
        q = q.where(
            tuple_(Authorization.area_id, Authorization.person_id, Authorization.id)
            > tuple_(*(literal(x) for x in after))
        )
    order = (Authorization.area_id, Authorization.person_id, Authorization.id)
    auths = list(db.scalars(q.order_by(*order).limit(PAGE + 1)).unique())
    more = len(auths) > PAGE
    auths = auths[:PAGE]
    next_cursor = f"{auths[-1].area_id}_{auths[-1].person_id}_{auths[-1].id}" if more else None
    person_ids = list({a.person_id for a in auths})  # at most one page of people
    trained = last_trainings(db, person_ids)
    last_entry = (
        {
            (pid, aid): t
            for pid, aid, t in db.execute(
                select(Event.person_id, event_area(), func.max(Event.occurred_at))
                .outerjoin(Door, Event.door_id == Door.id)
                .where(Event.person_id.in_(person_ids), *entry())  # doors used, not grants
                .group_by(Event.person_id, event_area())
            )
        }
        if person_ids
        else {}
    )
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
    waiting = {
        r.params.get("authorization_id"): r
        for r in db.scalars(
            select(ApprovalRequest).where(
                ApprovalRequest.kind == ApprovalKind.AUTHORIZATION,
                ApprovalRequest.state == ApprovalState.PENDING,
            )
        )
    }
    changes = {
        r.params.get("authorization_id"): r
        for r in db.scalars(
            select(ApprovalRequest).where(
                ApprovalRequest.kind == ApprovalKind.AUTHORIZATION_CHANGE,
                ApprovalRequest.state == ApprovalState.PENDING,
            )
        )
    }
    return render_template(
        "authorizations.html",
        waiting=waiting,
        changes=changes,
        rows=rows,
        next_cursor=next_cursor,
        areas=db.scalars(select(Area).order_by(Area.code)).all(),
        people=pickers.first(db, _staff(), person_id),
        area_id=area_id,
        person_id=person_id,
    )


@bp.route("/people.json")
@requires("authorizations.view")
def people_json() -> ResponseReturnValue:
    """Active staff whose name matches ``q`` (bounded; the person pickers' search)."""
    return pickers.pick(get_session(), _staff(), request.args.get("q", ""))


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
    # four eyes: the creation is the request; another manager approves (web/approvals.py)
    if ask(ApprovalKind.AUTHORIZATION, authorization_terms(auth)) is None:
        db.rollback()
        return redirect(url_for("authorizations.index"))
    db.commit()
    flash(_("The authorization waits for approval by a second manager."), "info")
    return redirect(url_for("authorizations.index", area=area.id))


def _auth_or_404(auth_id: int) -> Authorization:
    auth = get_session().get(Authorization, auth_id)
    if auth is None:
        abort(404)
    return auth


def _back() -> ResponseReturnValue:
    return redirect(request.referrer or url_for("authorizations.index"))


@bp.route("/<int:auth_id>/approve", methods=["POST"])
@requires("authorizations.edit")
def approve(auth_id: int) -> ResponseReturnValue:
    """Four eyes: approve another manager's request; with no open request (a revoked
    authorization, or one from before dual control) this click is the request."""
    db = get_session()
    auth = _auth_or_404(auth_id)
    if _ends_before_start(auth.valid_from, auth.valid_until):  # rows from before the check
        flash(_("The end of the validity is before its start."), "error")
        return _back()
    req = four_eyes.pending_for(db, ApprovalKind.AUTHORIZATION, authorization_id=auth.id)
    if req is None:
        if auth.state == AuthorizationState.APPROVED:
            flash(_("This authorization is approved already."), "info")
        elif ask(ApprovalKind.AUTHORIZATION, authorization_terms(auth)) is not None:
            db.commit()
        return _back()
    if (again := needs_reauth(url_for("authorizations.index"))) is not None:
        return again
    approve_and_carry_out(req.id, None)
    return _back()


@bp.route("/<int:auth_id>/revoke", methods=["POST"])
@requires("authorizations.edit")
def revoke(auth_id: int) -> ResponseReturnValue:
    """Revoking needs a confirmation with the reason (kept in the audit row); open
    approval requests for the authorization are withdrawn with it."""
    db = get_session()
    auth = _auth_or_404(auth_id)
    reason = (request.form.get("reason") or "").strip()[:REASON_MAX]
    if not reason or request.form.get("confirm") != "1":
        flash(_("Confirm the revocation and give the reason."), "error")
        return _back()
    before = snapshot(auth, FIELDS)
    auth.state = AuthorizationState.REVOKED
    for kind in (ApprovalKind.AUTHORIZATION, ApprovalKind.AUTHORIZATION_CHANGE):
        while (req := four_eyes.pending_for(db, kind, authorization_id=auth.id)) is not None:
            req.state = ApprovalState.CANCELLED
            audit("approval.cancel", "approval", req.id, after={"why": "authorization revoked"})
            db.flush()
    after = {**snapshot(auth, FIELDS), "reason": reason}
    audit("authorization.revoke", "authorization", auth.id, before=before, after=after)
    db.commit()
    flash(_("Revoked."), "info")
    return _back()


@bp.route("/<int:auth_id>/edit", methods=["POST"])
@requires("authorizations.edit")
def edit(auth_id: int) -> ResponseReturnValue:
    """Change the end, purpose or schedule. An approved authorization is not changed here:
    the edit becomes a change request a second manager approves (four eyes, like the
    approval itself), and the doors keep deciding on the approved terms until then. This
    holds for narrowing edits too (the rule stays one rule); to end access at once, revoke."""
    db = get_session()
    auth = _auth_or_404(auth_id)
    try:
        valid_until = _local_date(request.form.get("valid_until", ""), end=True)
    except ValueError:
        flash(_("Dates must look like 2026-04-01."), "error")
        return redirect(url_for("authorizations.index"))
    if _ends_before_start(auth.valid_from, valid_until):
        flash(_("The end of the validity is before its start."), "error")
        return redirect(url_for("authorizations.index"))
    try:
        schedule = parse_schedule(request.form.get("schedule", ""))
    except ScheduleError as exc:
        flash(_("The schedule is not understood near: %(part)s", part=str(exc)), "error")
        return redirect(url_for("authorizations.index"))
    purpose = (request.form.get("default_purpose") or "").strip()[:200] or None
    if auth.state == AuthorizationState.APPROVED:
        return _ask_change(auth, valid_until, purpose, schedule)
    before = snapshot(auth, FIELDS)
    auth.valid_until, auth.default_purpose, auth.schedule = valid_until, purpose, schedule
    audit(
        "authorization.edit", "authorization", auth.id, before=before, after=snapshot(auth, FIELDS)
    )
    old = four_eyes.pending_for(db, ApprovalKind.AUTHORIZATION, authorization_id=auth.id)
    if old is not None and old.params != authorization_terms(auth):
        # the request was for other terms: it lapses, and the edit is the new request
        old.state = ApprovalState.CANCELLED
        audit("approval.cancel", "approval", old.id, after={"why": "authorization edited"})
        db.flush()
        if ask(ApprovalKind.AUTHORIZATION, authorization_terms(auth)) is None:
            db.rollback()
            return redirect(url_for("authorizations.index"))
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("authorizations.index", area=auth.area_id))


def _ask_change(
    auth: Authorization, valid_until: datetime | None, purpose: str | None, schedule: object
) -> ResponseReturnValue:
    """Record a change request for approved ``auth`` (the row itself is left as it is)."""
    db = get_session()
    back = redirect(url_for("authorizations.index", area=auth.area_id))
    proposed = {
        "valid_until": valid_until.isoformat() if valid_until else None,
        "default_purpose": purpose,
        "schedule": schedule,
    }
    params = change_params(auth, proposed)
    if params["after"] == {k: params["before"][k] for k in CHANGEABLE}:
        flash(_("Nothing was changed."), "info")
        return back
    # a newer edit replaces an open change request for the same authorization
    while (
        old := four_eyes.pending_for(
            db, ApprovalKind.AUTHORIZATION_CHANGE, authorization_id=auth.id
        )
    ) is not None and old.params != params:
        old.state = ApprovalState.CANCELLED
        audit("approval.cancel", "approval", old.id, after={"why": "a newer change was asked"})
        db.flush()
    reason = (request.form.get("reason") or "").strip()[:REASON_MAX] or None
    req = ask(ApprovalKind.AUTHORIZATION_CHANGE, params, reason)
    if req is None:
        db.rollback()
        return back
    audit(
        "authorization.change_request",
        "authorization",
        auth.id,
        before=params["before"],
        after={**params["after"], "approval": req.id},
    )
    db.commit()
    flash(
        _(
            "The change waits for approval by a second manager;"
            " until then the approved terms apply."
        ),
        "info",
    )
    return back
