"""People and their cards: create, edit, deactivate, trainings, card enrolment, PINs."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import literal, or_, select, tuple_
from sqlalchemy.orm import selectinload

from db.commands import CommandKind
from db.models import (
    ApprovalKind,
    Area,
    Command,
    Credential,
    CredentialState,
    Person,
    PersonKind,
    Technology,
    Training,
)
from db.search import name_filter
from domain.training import training_state
from web.approvals import REASON_MAX, ask
from web.audit import audit, snapshot
from web.cards import (
    CardIdError,
    enrolment_status,
    normalise_card_id,
    reader_choices,
    start_enrolment,
)
from web.db import get_session
from web.eligibility import last_trainings
from web.i18n import site_zone
from web.ids import parse_id
from web.pins import hash_pin, pin_problem
from web.roles import requires
from web.views.occupancy import request_forgive

bp = Blueprint("people", __name__, url_prefix="/people")

PERSON_FIELDS = (
    "name",
    "name_kana",
    "organization",
    "employee_no",
    "designated",
    "active",
    "email",
)
CARD_FIELDS = ("technology", "card_id", "label", "state", "temporary", "person_id")


def _person_or_404(person_id: int) -> Person:
    person = get_session().get(Person, person_id)
    if person is None:
        abort(404)
    return person


def _today() -> date:
    from db.types import utcnow

    return utcnow().astimezone(site_zone()).date()


PAGE = 50


def _cursor(value: str) -> tuple[str, str, int] | None:
    """``kind_id_name`` of the last row of a page (the name last: it may hold ``_``)."""
    kind, _sep, rest = value.partition("_")
    ident, _sep, name = rest.partition("_")
    pid = parse_id(ident)
    if kind not in (PersonKind.STAFF, PersonKind.VISITOR) or pid is None:
        return None
    return kind, name, pid


@bp.route("/")
@requires("people.view")
def index() -> ResponseReturnValue:
    """People in (kind, name) order, one keyset page at a time; search by part of the name
    (db.search: indexed) or by the exact employee number."""
    db = get_session()
    q = select(Person).order_by(Person.kind, Person.name, Person.id)
    text = request.args.get("q", "").strip()[:100]
    if text:
        # the matches first (index-served), then their order: as one OR beside the ORDER BY,
        # SQLite walked every person in name order testing each (0.5 s at 200,000 people for
        # a name nobody has); the sort is bounded by the number of matches
        hits = select(Person.id).where(
            or_(name_filter(db.get_bind().dialect.name, text), Person.employee_no == text)
        )
        q = q.where(Person.id.in_(hits))
    kind = request.args.get("kind", "staff")
    if kind in ("staff", "visitor"):
        q = q.where(Person.kind == kind)
    if (after := _cursor(request.args.get("after", ""))) is not None:
        q = q.where(
            tuple_(Person.kind, Person.name, Person.id) > tuple_(*(literal(x) for x in after))
        )
    people = list(db.scalars(q.limit(PAGE + 1).options(selectinload(Person.credentials))))
    more = len(people) > PAGE
    people = people[:PAGE]
    next_cursor = f"{people[-1].kind}_{people[-1].id}_{people[-1].name}" if more else None
    trained = last_trainings(db, [p.id for p in people])
    today = _today()
    return render_template(
        "people.html",
        people=people,
        next_cursor=next_cursor,
        training={p.id: training_state(trained.get(p.id), today) for p in people},
        q=text,
        kind=kind,
    )


def _form_person(person: Person) -> str | None:
    name = request.form.get("name", "").strip()
    if not name:
        return _("A name is required.")
    person.name = name[:200]
    person.name_kana = request.form.get("name_kana", "").strip()[:200] or None
    person.organization = request.form.get("organization", "").strip()[:200] or None
    person.employee_no = request.form.get("employee_no", "").strip()[:64] or None
    person.email = request.form.get("email", "").strip()[:200] or None
    person.designated = request.form.get("designated") == "1"
    return None


def _employee_no_taken(person: Person) -> str | None:
    """Refuse an employee number another person has (edit hit the unique index: a 500)."""
    if not person.employee_no:
        return None
    db = get_session()
    with db.no_autoflush:  # the edited person must not be written by the query
        other = db.scalar(
            select(Person.id).where(
                Person.employee_no == person.employee_no, Person.id != person.id
            )
        )
    return _("This employee number is already used.") if other is not None else None


@bp.route("/new", methods=["GET", "POST"])
@requires("people.edit")
def create() -> ResponseReturnValue:
    person = Person(kind=PersonKind.STAFF, active=True, designated=False)
    if request.method == "POST":
        problem = _form_person(person) or _employee_no_taken(person)
        db = get_session()
        if problem:
            flash(problem, "error")
            return render_template("person_form.html", person=person), 400
        db.add(person)
        db.flush()
        audit("person.create", "person", person.id, after=snapshot(person, PERSON_FIELDS))
        db.commit()
        flash(_("Saved."), "info")
        return redirect(url_for("people.show", person_id=person.id))
    return render_template("person_form.html", person=person)


@bp.route("/<int:person_id>")
@requires("people.view")
def show(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    trainings = db.scalars(
        select(Training)
        .where(Training.person_id == person.id)
        .order_by(Training.completed_on.desc())
    ).all()
    last = trainings[0].completed_on if trainings else None
    return render_template(
        "person.html",
        person=person,
        trainings=trainings,
        training=training_state(last, _today()),
        readers=reader_choices(db),
        technologies=list(Technology),
        areas=db.scalars(select(Area).order_by(Area.code)).all(),
    )


@bp.route("/<int:person_id>/edit", methods=["GET", "POST"])
@requires("people.edit")
def edit(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    if request.method == "POST":
        before = snapshot(person, PERSON_FIELDS)
        problem = _form_person(person) or _employee_no_taken(person)
        if problem:
            db.rollback()
            flash(problem, "error")
            return render_template("person_form.html", person=person), 400
        audit(
            "person.update",
            "person",
            person.id,
            before=before,
            after=snapshot(person, PERSON_FIELDS),
        )
        db.commit()
        flash(_("Saved."), "info")
        return redirect(url_for("people.show", person_id=person.id))
    return render_template("person_form.html", person=person)


@bp.route("/<int:person_id>/active", methods=["POST"])
@requires("people.edit")
def set_active(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    before = snapshot(person, PERSON_FIELDS)
    person.active = request.form.get("active") == "1"
    if not person.active:  # a deactivated person's cards stop working at once
        for cred in person.credentials:
            if cred.state == CredentialState.ACTIVE:
                cred.state = CredentialState.INACTIVE
    audit(
        "person.activate" if person.active else "person.deactivate",
        "person",
        person.id,
        before=before,
        after=snapshot(person, PERSON_FIELDS),
    )
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("people.show", person_id=person.id))


@bp.route("/<int:person_id>/trainings", methods=["POST"])
@requires("people.edit")
def add_training(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    course = request.form.get("course", "").strip()[:200]
    try:
        completed = date.fromisoformat(request.form.get("completed_on", ""))
    except ValueError:
        completed = None
    if not course or completed is None or completed > _today():
        flash(_("Give the course and a completion date that is not in the future."), "error")
        return redirect(url_for("people.show", person_id=person.id))
    t = Training(person_id=person.id, course=course, completed_on=completed)
    db.add(t)
    db.flush()
    audit(
        "training.create",
        "person",
        person.id,
        after={"course": course, "completed_on": completed.isoformat()},
    )
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("people.show", person_id=person.id))


def add_credential(
    person: Person, technology: str, raw_id: str, label: str | None, temporary: bool = False
) -> Credential | str:
    """Create a card for ``person``; returns the credential or a message saying why not."""
    db = get_session()
    try:
        tech, card_id = normalise_card_id(technology, raw_id)
    except CardIdError as exc:
        return _("The card id is not valid: %(reason)s", reason=str(exc))
    existing = db.scalar(
        select(Credential).where(Credential.technology == tech, Credential.card_id == card_id)
    )
    if existing is not None:
        if not (temporary and existing.temporary and existing.state == CredentialState.RETURNED):
            return _("This card is already registered.")
        before = snapshot(existing, CARD_FIELDS)
        existing.person_id, existing.state = person.id, CredentialState.ACTIVE
        existing.failed_pin_count = 0
        audit(
            "credential.reissue",
            "credential",
            existing.id,
            before=before,
            after=snapshot(existing, CARD_FIELDS),
        )
        return existing
    cred = Credential(
        person_id=person.id,
        technology=tech,
        card_id=card_id,
        label=(label or "").strip()[:64] or None,
        temporary=temporary,
        state=CredentialState.ACTIVE,
    )
    db.add(cred)
    db.flush()
    audit("credential.create", "credential", cred.id, after=snapshot(cred, CARD_FIELDS))
    return cred


@bp.route("/<int:person_id>/cards", methods=["POST"])
@requires("people.edit")
def add_card(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    result = add_credential(
        person,
        request.form.get("technology", ""),
        request.form.get("card_id", ""),
        request.form.get("label"),
    )
    if isinstance(result, str):
        db.rollback()
        flash(result, "error")
    else:
        db.commit()
        flash(_("The card is registered."), "info")
    return redirect(url_for("people.show", person_id=person.id))


@bp.route("/<int:person_id>/enrol", methods=["POST"])
@requires("people.edit")
def enrol(person_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    reader = request.form.get("reader", "")
    if reader not in reader_choices(db):
        flash(_("Choose a reader."), "error")
        return redirect(url_for("people.show", person_id=person.id))
    cmd = start_enrolment(db, reader, current_user.id)
    db.commit()
    return redirect(url_for("people.enrol_wait", person_id=person.id, command_id=cmd.id))


@bp.route("/<int:person_id>/enrol/<int:command_id>")
@requires("people.edit")
def enrol_wait(person_id: int, command_id: int) -> ResponseReturnValue:
    db = get_session()
    person = _person_or_404(person_id)
    cmd = db.get(Command, command_id)
    if cmd is None or cmd.kind != CommandKind.ENROL or cmd.operator_id != current_user.id:
        abort(404)  # only the operator's own enrolment shows the card read
    return render_template(
        "enrol_wait.html",
        person=person,
        cmd=cmd,
        status=enrolment_status(cmd),
        confirm_url=url_for("people.add_card", person_id=person.id),
        back_url=url_for("people.show", person_id=person.id),
    )


def _card_or_404(card_id: int) -> Credential:
    cred = get_session().get(Credential, card_id)
    if cred is None or cred.person_id is None:
        abort(404)
    return cred


@bp.route("/cards/<int:card_id>/pin", methods=["POST"])
@requires("people.edit")
def set_pin(card_id: int) -> ResponseReturnValue:
    db = get_session()
    cred = _card_or_404(card_id)
    pin, again = request.form.get("pin", ""), request.form.get("pin_again", "")
    if pin != again:
        flash(_("The two PINs differ."), "error")
    elif (problem := pin_problem(pin)) is not None:
        flash(_("This PIN is refused: %(why)s", why=pin_reason(problem)), "error")
    else:
        had = cred.pin_hash is not None
        cred.pin_hash = hash_pin(pin)
        cred.failed_pin_count = 0
        audit(
            "credential.pin_reset" if had else "credential.pin_set",
            "credential",
            cred.id,
            before={"pin": "(set)" if had else None},
            after={"pin": "(set)"},
        )
        db.commit()
        flash(_("The PIN is set. It is not shown again."), "info")
    return redirect(url_for("people.show", person_id=cred.person_id))


def pin_reason(code: str) -> str:
    return {
        "pin_format": _("digits only"),
        "pin_short": _("at least 6 digits"),
        "pin_long": _("at most 12 digits"),
        "pin_repeated": _("repeated digits or a repeated block of digits"),
        "pin_sequence": _("digits in sequence"),
    }.get(code, code)


@bp.route("/cards/<int:card_id>/state", methods=["POST"])
@requires("people.edit")
def card_state(card_id: int) -> ResponseReturnValue:
    db = get_session()
    cred = _card_or_404(card_id)
    try:
        state = CredentialState(request.form.get("state", ""))
    except ValueError:
        abort(400)
    if cred.state == CredentialState.LOCKED and state == CredentialState.ACTIVE:
        # four eyes: unlocking after wrong PINs is asked here, approved by a second manager
        if ask(ApprovalKind.UNLOCK, {"credential_id": cred.id, "person_id": cred.person_id}):
            db.commit()
        return redirect(url_for("people.show", person_id=cred.person_id))
    if cred.state == CredentialState.LOCKED and state != cred.state:
        # a locked card leaves "locked" only by the four-eyes unlock: were it "lost" first,
        # one person could then make it active again (a locked card opens no door anyway)
        flash(
            _("A locked card stays locked until a second manager approves unlocking it."), "error"
        )
        return redirect(url_for("people.show", person_id=cred.person_id))
    reason = request.form.get("reason", "").strip()[:REASON_MAX]
    if state != CredentialState.ACTIVE and state != cred.state and not reason:
        flash(_("Give the reason for taking the card out of use."), "error")
        return redirect(url_for("people.show", person_id=cred.person_id))
    before = snapshot(cred, CARD_FIELDS)
    cred.state = state
    after = snapshot(cred, CARD_FIELDS)
    if reason:
        after["reason"] = reason
    audit("credential.state", "credential", cred.id, before=before, after=after)
    db.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("people.show", person_id=cred.person_id))


@bp.route("/<int:person_id>/forgive", methods=["POST"])
@requires("antipassback.forgive")
def forgive(person_id: int) -> ResponseReturnValue:
    person = _person_or_404(person_id)
    request_forgive(person, parse_id(request.form.get("area_id", "")))
    return redirect(url_for("people.show", person_id=person.id))
