"""The reception desk: register visitors, issue and collect badges, sign out (4(2), 4(5))."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.elements import ColumnElement

from db.commands import CommandKind, enqueue
from db.models import (
    Area,
    Command,
    Credential,
    CredentialState,
    Person,
    PersonKind,
    Presence,
    Snapshot,
    Technology,
    Visit,
)
from db.notifications import queue_for_visit
from db.photos import CAMERA as PHOTO_CAMERA
from db.photos import SUBDIR as PHOTO_DIR
from db.photos import PhotoError, photo_mime, store_photo
from db.search import name_filter
from db.types import utcnow
from domain.reasons import Reason
from domain.vocabulary import NotificationKind
from web import pickers
from web.audit import audit, snapshot
from web.cards import EnrolStatus, enrolment_status, reader_choices, start_enrolment
from web.db import get_session
from web.eligibility import escorts_query, may_escort
from web.i18n import reason_text, site_zone
from web.ids import parse_id
from web.roles import requires
from web.views.incidents import snapshot_file
from web.views.people import CARD_FIELDS, PERSON_FIELDS, add_credential

log = logging.getLogger(__name__)

bp = Blueprint("visitors", __name__, url_prefix="/visitors")
log = logging.getLogger(__name__)

TODAY_LIMIT = 25  # today's open visits per page (keyset by start time and id): each renders
# three forms, and 100 of them cost the guard's page 140 ms of CPU
UPCOMING_PAGE = 25  # upcoming visits per page (keyset by start time and id)
EXIT_REASON_MAX = 500
PHOTO_READ_LIMIT = 1024 * 1024 + 1  # store_photo refuses anything over its own limit
PHOTO_ERRORS = {
    "empty": lambda: _("No photo was received."),
    "too_large": lambda: _("The photo is too large (at most 900 KB)."),
    "not_image": lambda: _("Only JPEG and PNG photos are accepted."),
}

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
    "photo_id",
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


def _hosts() -> Select[Person]:
    return (
        select(Person)
        .where(Person.kind == PersonKind.STAFF, Person.active.is_(True))
        .order_by(Person.kind, Person.name, Person.id)
    )


def _day_start(day: date) -> datetime:
    """Midnight of a local day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=site_zone()).astimezone(UTC)


def _filters() -> dict[str, Any]:
    """The list's filters from the query string: day (YYYY-MM-DD), host, area."""
    day: date | None
    try:
        day = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        day = None
    return {
        "day": day,
        "host": parse_id(request.args.get("host")),
        "area": parse_id(request.args.get("area")),
    }


def _visit_query(filters: dict[str, Any]) -> Any:
    """Open visits matching the filters: ids only (``_page_rows`` loads the rows)."""
    conds: list[ColumnElement[bool]] = [Visit.signed_out_at.is_(None)]
    if filters["host"] is not None:
        conds.append(Visit.host_id == filters["host"])
    if filters["area"] is not None:
        conds.append(Visit.area_id == filters["area"])
    return select(Visit.id).where(*conds)


def _page_rows(ids: Any, limit: int) -> list[Visit]:
    """The first ``limit`` visits of ``ids`` by start time, with their people. The page's ids
    are chosen first, without joins: PostgreSQL otherwise joined three copies of the people
    table to every open visit before sorting them (550 ms at 1M people)."""
    page = ids.order_by(Visit.expected_from, Visit.id).limit(limit).subquery()
    q = (
        select(Visit)
        .options(
            joinedload(Visit.visitor),
            joinedload(Visit.escort),
            joinedload(Visit.area),
            joinedload(Visit.badge),
            joinedload(Visit.host),
        )
        .where(Visit.id.in_(select(page.c.id)))
        .order_by(Visit.expected_from, Visit.id)
    )
    return list(get_session().scalars(q).unique())


def _after_key(after: str) -> tuple[datetime, int] | None:
    """A keyset cursor ``<start time ISO with offset>_<visit id>``, or None if unreadable."""
    start_s, _sep, id_s = after.partition("_")
    try:
        key = (datetime.fromisoformat(start_s), int(id_s)) if after else None
    except ValueError:
        return None
    return key if key is not None and key[0].tzinfo is not None else None


def _lists(now: datetime) -> dict[str, Any]:
    """Today's open visits and the upcoming ones (pre-registered for a later day), filtered
    by day, host and area; both bounded (the upcoming list pages by start time and id)."""
    db = get_session()
    filters = _filters()
    today = now.astimezone(site_zone()).date()
    tomorrow = _day_start(today + timedelta(days=1))
    day = filters["day"]
    todays: list[Visit] = []
    today_after = None
    if day is None or day <= today:  # open visits whose window started by the end of today
        q = _visit_query(filters).where(Visit.expected_from < tomorrow)
        if day is not None and day < today:
            q = q.where(
                Visit.expected_from >= _day_start(day),
                Visit.expected_from < _day_start(day + timedelta(days=1)),
            )
        # one keyset page at a time (start time, id), like the upcoming list below
        if (key := _after_key(request.args.get("today_after", ""))) is not None:
            q = q.where(tuple_(Visit.expected_from, Visit.id) > key)
        rows = _page_rows(q, TODAY_LIMIT + 1)
        todays = rows[:TODAY_LIMIT]
        if len(rows) > TODAY_LIMIT:
            last = todays[-1]
            today_after = f"{last.expected_from.astimezone(UTC).isoformat()}_{last.id}"
    upcoming: list[Visit] = []
    more_after = None
    if day is None or day > today:
        q = _visit_query(filters).where(Visit.expected_from >= tomorrow)
        if day is not None:
            q = q.where(
                Visit.expected_from >= _day_start(day),
                Visit.expected_from < _day_start(day + timedelta(days=1)),
            )
        if (after_key := _after_key(request.args.get("after", ""))) is not None:
            q = q.where(tuple_(Visit.expected_from, Visit.id) > after_key)
        rows = _page_rows(q, UPCOMING_PAGE + 1)
        upcoming = rows[:UPCOMING_PAGE]
        if len(rows) > UPCOMING_PAGE:
            last = upcoming[-1]
            more_after = f"{last.expected_from.astimezone(UTC).isoformat()}_{last.id}"
    # the host filter searches as you type (hosts.json); the page names only the chosen host
    chosen = db.get(Person, filters["host"]) if filters["host"] is not None else None
    host_rows = [chosen] if chosen is not None else []
    return {
        "visits": todays,
        "today_after": today_after,
        "upcoming": upcoming,
        "more_after": more_after,
        "filters": filters,
        "filter_hosts": host_rows,
        "today": today,
    }


def _page(form: dict[str, Any], errors: list[str], status: int = 200) -> ResponseReturnValue:
    db = get_session()
    now = utcnow()
    today = now.astimezone(site_zone()).date()
    areas = db.scalars(select(Area).order_by(Area.code)).all()
    # the first escorts of the chosen area only (the area select's first one when none is
    # chosen yet); another area's escorts and any name come from escorts.json as the guard
    # picks the area or types (static/app.js): one bounded query, not one per area
    chosen_area = parse_id(form.get("area_id"))
    if chosen_area not in {a.id for a in areas}:
        chosen_area = areas[0].id if areas else None
    escorts = (
        pickers.first(db, escorts_query(chosen_area, now, today), parse_id(form.get("escort_id")))
        if chosen_area is not None
        else []
    )
    lists = _lists(now)
    shown = [v.visitor_id for v in lists["visits"]]
    inside = (
        set(db.scalars(select(Presence.person_id).where(Presence.person_id.in_(shown))))
        if shown
        else set()
    )
    q = request.args.get("q", "").strip()[:100]
    found: list[Person] = []
    if q:
        # visitors only (a few percent of the people: the kind index bounds the read), by
        # name (db.search) or organization
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = list(
            db.scalars(
                select(Person)
                .where(
                    Person.kind == PersonKind.VISITOR,
                    or_(
                        name_filter(db.get_bind().dialect.name, q),
                        Person.organization.like(like, escape="\\"),
                    ),
                )
                .order_by(Person.kind, Person.name, Person.id)
                .limit(20)
            )
        )
    hosts = pickers.first(db, _hosts(), parse_id(form.get("host_id")))
    return render_template(
        "visitors.html",
        form=form,
        errors=errors,
        areas=areas,
        escorts=escorts,
        escort_area=chosen_area,
        hosts=hosts,
        inside=inside,
        q=q,
        found=found,
        device_rows=range(1, DEVICE_ROWS + 1),
        readers=reader_choices(db),
        technologies=list(Technology),
        now=now,
        **lists,
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
    else:
        now = utcnow()
        today = now.astimezone(site_zone()).date()
        if start.astimezone(site_zone()).date() < today or end <= now:
            errors.append(
                _(
                    "A visit cannot be registered in the past: the expected window must end "
                    "later than now and start today or on a later day."
                )
            )
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
        today = now.astimezone(site_zone()).date()
        if escort is None or not may_escort(db, area.id, escort.id, now, today):
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


@bp.route("/escorts.json")
@requires("visitors.handle")
def escorts_json() -> ResponseReturnValue:
    """Escorts for the area whose name matches ``q`` (bounded; the picker's search)."""
    area_id = parse_id(request.args.get("area", ""))
    if area_id is None:
        return {"error": "area: " + _("expected a number")}, 400
    now = utcnow()
    today = now.astimezone(site_zone()).date()
    return pickers.pick(
        get_session(), escorts_query(area_id, now, today), request.args.get("q", "")
    )


@bp.route("/hosts.json")
@requires("visitors.handle")
def hosts_json() -> ResponseReturnValue:
    """Active staff whose name matches ``q`` (bounded; the host picker's search)."""
    return pickers.pick(get_session(), _hosts(), request.args.get("q", ""))


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
    before = None if visitor is None else snapshot(visitor, PERSON_FIELDS)
    if visitor is None:
        visitor = Person(kind=PersonKind.VISITOR, name=form["name"], active=True)
        db.add(visitor)
    visitor.name = form["name"]
    visitor.name_kana = form["name_kana"] or None
    visitor.organization = form["organization"] or None
    db.flush()
    # The name is shown on all the visitor's past events: a change at the desk (a typo, a new
    # company) is allowed but never silent; it is audited like an edit on the people page.
    after = snapshot(visitor, PERSON_FIELDS)
    if before is None:
        audit("person.create", "person", visitor.id, after=after)
    elif before != after:
        audit("person.update", "person", visitor.id, before=before, after=after)
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
    day = checked["start"].astimezone(site_zone()).date()
    if day > utcnow().astimezone(site_zone()).date():
        flash(
            _(
                "%(name)s is registered for %(day)s: the visit is in the upcoming list.",
                name=visitor.name,
                day=day.isoformat(),
            ),
            "info",
        )
    else:
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
    old = visit.badge
    if old is not None and old.id != result.id and old.state != CredentialState.RETURNED:
        # one visitor, one working badge: the first one (lost, swapped) stops opening doors
        old_before = snapshot(old, CARD_FIELDS)
        old.state = CredentialState.RETURNED
        audit(
            "credential.state",
            "credential",
            old.id,
            before=old_before,
            after=snapshot(old, CARD_FIELDS),
        )
    visit.badge = result  # the relationship too: the notification below reads visit.badge
    visit.signed_in_at = visit.signed_in_at or utcnow()
    audit(
        "visit.badge_issued", "visit", visit.id, before=before, after=snapshot(visit, VISIT_FIELDS)
    )
    # the host and escort hear of it by e-mail; only queue rows here, the sending happens
    # off this request (web.notify), so a mail server never makes the guard wait
    queue_for_visit(
        db,
        visit,
        NotificationKind.BADGE_ISSUED,
        site_zone(),
        mail_configured=bool(current_app.config["NYUTAI_MAIL"].host),
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
    db = get_session()
    cmd = db.get(Command, command_id)
    # only the operator's own enrolment: another's (a manager enrolling a staff card on the
    # people page) would show that card's number to the desk
    if cmd is None or cmd.kind != CommandKind.ENROL or cmd.operator_id != current_user.id:
        abort(404)
    status = enrolment_status(cmd)
    if status.state == "done" and not _free_badge(status.technology, status.card_id):
        # a staff card (or a badge in use) was presented: say so without showing its number
        log.info("visit %s: a registered card was presented as a badge", visit.id)
        status = EnrolStatus("refused")
    return render_template(
        "enrol_wait.html",
        person=visit.visitor,
        cmd=cmd,
        status=status,
        confirm_url=url_for("visitors.issue_badge", visit_id=visit.id),
        back_url=url_for("visitors.index"),
    )


def _free_badge(technology: str | None, card_id: str | None) -> bool:
    """May this card become a visitor badge: unknown, or a returned temporary badge?"""
    cred = get_session().scalar(
        select(Credential).where(Credential.technology == technology, Credential.card_id == card_id)
    )
    return cred is None or (cred.temporary and cred.state == CredentialState.RETURNED)


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
    inside_areas = list(
        db.scalars(select(Presence.area_id).where(Presence.person_id == visit.visitor_id))
    )
    reason = request.form.get("exit_reason", "").strip()[:EXIT_REASON_MAX]
    if inside_areas and (request.form.get("record_exit") != "1" or not reason):
        # the badge would go back while the log still has the visitor inside: refuse until
        # the exit is recorded at the door, or the guard records it here with a reason
        flash(
            _(
                "%(name)s is still recorded inside the area. Let them leave through the door "
                "with the escort, or record the exit here with a reason.",
                name=visit.visitor.name,
            ),
            "error",
        )
        return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))
    before = snapshot(visit, VISIT_FIELDS)
    if inside_areas:
        # the web never writes presence: the controller clears it (a ``forgive`` event row
        # in the chained log) and the guard's statement is in the audit log
        cmd = enqueue(
            db,
            CommandKind.FORGIVE,
            {"person_id": visit.visitor_id, "area_id": None},
            current_user.id,
        )
        audit(
            "visit.exit_recorded",
            "visit",
            visit.id,
            after={
                "visitor_id": visit.visitor_id,
                "areas": inside_areas,
                "reason": reason,
                "command": cmd.id,
            },
        )
    if visit.badge is not None:
        visit.badge.state = CredentialState.RETURNED
    visit.signed_out_at = utcnow()
    visit.devices_confirmed_out = bool(visit.declared_devices)
    audit("visit.sign_out", "visit", visit.id, before=before, after=snapshot(visit, VISIT_FIELDS))
    db.commit()
    if inside_areas:
        flash(
            _("The exit of %(name)s is recorded with your reason.", name=visit.visitor.name),
            "info",
        )
    flash(_("%(name)s is signed out and the badge is collected.", name=visit.visitor.name), "info")
    return redirect(url_for("visitors.index"))


def _data_dir() -> Any:
    data_dir = current_app.config.get("NYUTAI_DATA_DIR")
    if data_dir is None:
        abort(503)
    return data_dir


@bp.route("/<int:visit_id>/photo", methods=["POST"])
@requires("visitors.handle")
def photo(visit_id: int) -> ResponseReturnValue:
    """The guard's photo of the visitor (camera capture or file), stored by its SHA-256."""
    db = get_session()
    visit = _visit_or_404(visit_id)
    if visit.signed_out_at is not None:
        abort(400)
    upload = request.files.get("photo")
    data = upload.read(PHOTO_READ_LIMIT) if upload is not None else b""
    try:
        row = store_photo(db, _data_dir(), data, utcnow())
    except PhotoError as exc:
        db.rollback()
        log.info("visit %s: photo refused (%s)", visit_id, exc.code)
        flash(PHOTO_ERRORS.get(exc.code, PHOTO_ERRORS["not_image"])(), "error")
        return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))
    before = snapshot(visit, VISIT_FIELDS)
    visit.photo_id = row.id
    audit(
        "visit.photo",
        "visit",
        visit.id,
        before=before,
        after={**snapshot(visit, VISIT_FIELDS), "photo_sha256": row.sha256},
    )
    db.commit()
    flash(_("The photo of %(name)s is saved.", name=visit.visitor.name), "info")
    return redirect(url_for("visitors.index", _anchor=f"visit-{visit.id}"))


@bp.route("/photos/<int:snapshot_id>")
@requires("visitors.view")
def photo_file(snapshot_id: int) -> ResponseReturnValue:
    snap = get_session().get(Snapshot, snapshot_id)
    if snap is None or snap.camera != PHOTO_CAMERA:  # only desk photos, not door snapshots
        abort(404)
    path = snapshot_file(_data_dir(), snap.path, PHOTO_DIR)  # confined to the photo folder
    if path is None:
        log.warning("visitor photo %s: file missing or outside the data directory", snapshot_id)
        abort(404)
    return send_file(path, mimetype=photo_mime(snap.path), max_age=0)


@bp.route("/<int:visit_id>/badge.pdf")
@requires("visitors.handle")
def badge_pdf(visit_id: int) -> ResponseReturnValue:
    """The printable badge (A6): name, organisation, host, escort, area, window, photo,
    badge number and its QR code."""
    from db.reports.badge import badge_pdf as build
    from db.reports.badge import facts
    from db.reports.fonts import FontMissingError

    visit = _visit_or_404(visit_id)
    photo_path = None
    if visit.photo is not None:
        photo_path = snapshot_file(_data_dir(), visit.photo.path)
    try:
        pdf = build(facts(visit, photo_path), site_zone())
    except FontMissingError as exc:
        log.error("badge PDF: %s", exc)
        abort(503)
    audit("visit.badge_printed", "visit", visit.id)
    get_session().commit()
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="visitor-badge-{visit.id}.pdf"'},
    )
