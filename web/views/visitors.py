"""The reception desk: register visitors, issue and collect badges, sign out (4(2), 4(5))."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from db.commands import CommandKind
from db.models import (
    Area,
    Command,
    CredentialState,
    Person,
    PersonKind,
    Presence,
    Technology,
    Visit,
)
from db.people_search import person_or_org_matches
from db.types import utcnow
from domain.reasons import Reason
from web.audit import audit, snapshot
from web.cards import enrolment_status, reader_choices, start_enrolment
from web.db import get_session
from web.eligibility import eligible_escorts
from web.i18n import reason_text, site_zone
from web.ids import parse_id
from web.roles import requires
from web.views.people import add_credential

bp = Blueprint("visitors", __name__, url_prefix="/visitors")

DEVICE_ROWS = 3
DEFAULT_VISIT = timedelta(hours=4)
VISIT_FIELDS = (
    "visitor_id",
    "area_id",
    "purpose",
    "host_id",
    "escort_id",
    "id_checked",
    "id_kind",
    "declared_devices",
    "expected_from",
    "expected_until",
    "badge_credential_id",
    "signed_in_at",
    "signed_out_at",
    "devices_confirmed_out",
)


def _local_input(dt: datetime) -> str:
    return dt.astimezone(site_zone()).strftime("%Y-%m-%dT%H:%M")


def _parse_local(value: str) -> datetime | None:
    try:
        return (
            datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=site_zone()).astimezone(UTC)
        )
    except ValueError:
        return None


def _page(form: dict[str, Any], errors: list[str], status: int = 200) -> ResponseReturnValue:
    db = get_session()
    now = utcnow()
    today = now.astimezone(site_zone()).date()
    areas = db.scalars(select(Area).order_by(Area.code)).all()
    escorts = {a.id: eligible_escorts(db, a.id, now, today) for a in areas}
    open_visits = (
        db.scalars(
            select(Visit)
            .options(
                joinedload(Visit.visitor),
                joinedload(Visit.escort),
                joinedload(Visit.area),
                joinedload(Visit.badge),
                joinedload(Visit.host),
            )
            .where(Visit.signed_out_at.is_(None), Visit.expected_from < now + timedelta(days=1))
            .order_by(Visit.expected_from)
        )
        .unique()
        .all()
    )
    inside = {p.person_id for p in db.scalars(select(Presence))}
    q = request.args.get("q", "").strip()[:100]
    found: list[Person] = []
    if q:
        found = list(
            db.scalars(
                select(Person)
                .where(
                    Person.kind == PersonKind.VISITOR,
                    person_or_org_matches(q),
                )
                .order_by(Person.name)
                .limit(20)
            )
        )
    hosts = db.scalars(
        select(Person)
        .where(Person.kind == PersonKind.STAFF, Person.active.is_(True))
        .order_by(Person.name)
    ).all()
    return render_template(
        "visitors.html",
        form=form,
        errors=errors,
        areas=areas,
        escorts=escorts,
        hosts=hosts,
        visits=open_visits,
        inside=inside,
        q=q,
        found=found,
        device_rows=range(1, DEVICE_ROWS + 1),
        readers=reader_choices(db),
        technologies=list(Technology),
        now=now,
    ), status


@bp.route("/")
@requires("visitors.view")
def index() -> ResponseReturnValue:
    now = utcnow()
    form: dict[str, Any] = {
        "expected_from": _local_input(now),
        "expected_until": _local_input(now + DEFAULT_VISIT),
    }
    from_person = request.args.get("from_person", "")
    if (from_id := parse_id(from_person)) is not None:  # a repeat visitor: start from what we know
        p = get_session().get(Person, from_id)
        if p is not None and p.kind == PersonKind.VISITOR:
            form.update(
                visitor_id=p.id,
                name=p.name,
                name_kana=p.name_kana or "",
                organization=p.organization or "",
            )
    return _page(form, [])


def _validate(form: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Everything the visit needs, checked before anything is written."""
    db = get_session()
    errors: list[str] = []
    out: dict[str, Any] = {}
    if not form.get("name"):
        errors.append(_("The visitor's name is required."))
    if not form.get("purpose"):
        errors.append(_("The purpose of the visit is required (用件の確認)."))
    area_id = parse_id(form.get("area_id"))
    area = db.get(Area, area_id) if area_id is not None else None
    if area is None:
        errors.append(_("Choose the managed area."))
    out["area"] = area
    start, end = (
        _parse_local(form.get("expected_from", "")),
        _parse_local(form.get("expected_until", "")),
    )
    if start is None or end is None or end <= start:
        errors.append(_("The expected window needs a start and a later end."))
    out["start"], out["end"] = start, end
    host_id = parse_id(form.get("host_id"))
    host = db.get(Person, host_id) if host_id is not None else None
    if form.get("host_id") and (host is None or host.kind != PersonKind.STAFF or not host.active):
        errors.append(_("Choose the host among the active staff."))
    out["host"] = host
    escort = None
    if (escort_id := parse_id(form.get("escort_id"))) is not None:
        escort = db.get(Person, escort_id)
    if area is not None:
        now = utcnow()
        allowed = eligible_escorts(db, area.id, now, now.astimezone(site_zone()).date())
        if escort is None or escort.id not in {p.id for p in allowed}:
            errors.append(
                _(
                    "Choose an escort who may escort in this area: %(why)s",
                    why=reason_text(Reason.ESCORT_NOT_ALLOWED),
                )
            )
        permitted = set(area.permitted_devices or [])
        for dev in form["devices"]:
            if dev["kind"] not in permitted:
                errors.append(
                    _(
                        "%(device)s: %(why)s",
                        device=dev["kind"],
                        why=reason_text(Reason.DEVICE_NOT_PERMITTED),
                    )
                )
    out["escort"] = escort
    return errors, out


def _read_form() -> dict[str, Any]:
    f = request.form
    devices = []
    for i in range(1, DEVICE_ROWS + 1):
        kind = f.get(f"device_kind_{i}", "").strip()[:64]
        if kind:
            devices.append({"kind": kind, "serial": f.get(f"device_serial_{i}", "").strip()[:100]})
    return {
        "visitor_id": parse_id(f.get("visitor_id")),
        "name": f.get("name", "").strip()[:200],
        "name_kana": f.get("name_kana", "").strip()[:200],
        "organization": f.get("organization", "").strip()[:200],
        "id_checked": f.get("id_checked") == "1",
        "id_kind": f.get("id_kind", "")[:64],
        "purpose": f.get("purpose", "").strip()[:500],
        "host_id": f.get("host_id", ""),
        "area_id": f.get("area_id", ""),
        "escort_id": f.get("escort_id", ""),
        "expected_from": f.get("expected_from", ""),
        "expected_until": f.get("expected_until", ""),
        "devices": devices,
    }


@bp.route("/", methods=["POST"])
@requires("visitors.handle")
def register() -> ResponseReturnValue:
    db = get_session()
    form = _read_form()
    errors, checked = _validate(form)
    if errors:
        return _page(form, errors, 400)
    visitor = None
    if form["visitor_id"]:
        visitor = db.get(Person, form["visitor_id"])
        if visitor is not None and visitor.kind != PersonKind.VISITOR:
            visitor = None
    if visitor is None:
        visitor = Person(kind=PersonKind.VISITOR, name=form["name"], active=True)
        db.add(visitor)
    visitor.name = form["name"]
    visitor.name_kana = form["name_kana"] or None
    visitor.organization = form["organization"] or None
    db.flush()
    visit = Visit(
        visitor_id=visitor.id,
        area_id=checked["area"].id,
        purpose=form["purpose"],
        host_id=checked["host"].id if checked["host"] else None,
        escort_id=checked["escort"].id,
        id_checked=form["id_checked"],
        id_kind=form["id_kind"] or None if form["id_checked"] else None,
        declared_devices=form["devices"],
        expected_from=checked["start"],
        expected_until=checked["end"],
        created_by=current_user.id,
    )
    db.add(visit)
    db.flush()
    audit("visit.create", "visit", visit.id, after=snapshot(visit, VISIT_FIELDS))
    db.commit()
    flash(_("%(name)s is registered. Issue a badge.", name=visitor.name), "info")
    return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))


def _visit_or_404(visit_id: int) -> Visit:
    visit = get_session().get(Visit, visit_id)
    if visit is None:
        abort(404)
    return visit


@bp.route("/<int:visit_id>/badge", methods=["POST"])
@requires("visitors.handle")
def issue_badge(visit_id: int) -> ResponseReturnValue:
    db = get_session()
    visit = _visit_or_404(visit_id)
    if visit.signed_out_at is not None:
        abort(400)
    before = snapshot(visit, VISIT_FIELDS)
    result = add_credential(
        visit.visitor,
        request.form.get("technology", ""),
        request.form.get("card_id", ""),
        request.form.get("label"),
        temporary=True,
    )
    if isinstance(result, str):
        db.rollback()
        flash(result, "error")
        return redirect(url_for("visitors.index"))
    # the badge works only during the visit window
    result.valid_from, result.valid_until = visit.expected_from, visit.expected_until
    visit.badge_credential_id = result.id
    visit.signed_in_at = visit.signed_in_at or utcnow()
    audit(
        "visit.badge_issued", "visit", visit.id, before=before, after=snapshot(visit, VISIT_FIELDS)
    )
    db.commit()
    flash(_("Badge issued to %(name)s.", name=visit.visitor.name), "info")
    return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))


@bp.route("/<int:visit_id>/badge/present", methods=["POST"])
@requires("visitors.handle")
def badge_enrol(visit_id: int) -> ResponseReturnValue:
    db = get_session()
    visit = _visit_or_404(visit_id)
    reader = request.form.get("reader", "")
    if reader not in reader_choices(db):
        flash(_("Choose a reader."), "error")
        return redirect(url_for("visitors.index"))
    cmd = start_enrolment(db, reader, current_user.id)
    db.commit()
    return redirect(url_for("visitors.badge_wait", visit_id=visit.id, command_id=cmd.id))


@bp.route("/<int:visit_id>/badge/<int:command_id>")
@requires("visitors.handle")
def badge_wait(visit_id: int, command_id: int) -> ResponseReturnValue:
    visit = _visit_or_404(visit_id)
    cmd = get_session().get(Command, command_id)
    if cmd is None or cmd.kind != CommandKind.ENROL:
        abort(404)
    return render_template(
        "enrol_wait.html",
        person=visit.visitor,
        cmd=cmd,
        status=enrolment_status(cmd),
        confirm_url=url_for("visitors.issue_badge", visit_id=visit.id),
        back_url=url_for("visitors.index"),
    )


@bp.route("/<int:visit_id>/signout", methods=["POST"])
@requires("visitors.handle")
def sign_out(visit_id: int) -> ResponseReturnValue:
    db = get_session()
    visit = _visit_or_404(visit_id)
    if visit.signed_out_at is not None:
        flash(_("This visit is already signed out."), "error")
        return redirect(url_for("visitors.index"))
    if visit.declared_devices and request.form.get("devices_confirmed") != "1":
        flash(_("Confirm that the declared devices leave with the visitor."), "error")
        return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))
    before = snapshot(visit, VISIT_FIELDS)
    if visit.badge is not None:
        visit.badge.state = CredentialState.RETURNED
    visit.signed_out_at = utcnow()
    visit.devices_confirmed_out = bool(visit.declared_devices)
    still_inside = db.scalar(select(Presence.id).where(Presence.person_id == visit.visitor_id))
    audit("visit.sign_out", "visit", visit.id, before=before, after=snapshot(visit, VISIT_FIELDS))
    db.commit()
    if still_inside:
        flash(
            _(
                "%(name)s is still recorded inside the area: check the area.",
                name=visit.visitor.name,
            ),
            "error",
        )
    flash(_("%(name)s is signed out and the badge is collected.", name=visit.visitor.name), "info")
    return redirect(url_for("visitors.index"))
