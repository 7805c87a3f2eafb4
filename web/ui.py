"""Labels and helpers shared by the templates (navigation, roles, decisions)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Flask, current_app, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape

from domain.words import word
from web.i18n import _translations, locale_code
from web.schedule import format_schedule

NAV = (
    ("dashboard.index", _l("Dashboard"), "live.view"),
    ("occupancy.index", _l("Occupancy"), "live.view"),
    ("visitors.index", _l("Visitors"), "visitors.view"),
    ("notifications.index", _l("Notifications"), "notifications.view"),
    ("alarms.index", _l("Alarms"), "alarms.view"),
    ("doors.index", _l("Doors"), "doors.view"),
    ("incidents.index", _l("Incidents"), "incidents.view"),
    ("events.index", _l("Event log"), "events.view"),
    ("events_recent.index", _l("Event log (24 h)"), "events.recent"),
    ("authorizations.index", _l("Authorizations"), "authorizations.view"),
    ("people.index", _l("People and cards"), "people.view"),
    ("review.index", _l("Access review"), "review.view"),
    ("reports.monthly", _l("Monthly report"), "reports.view"),
    ("approvals.index", _l("Approvals"), "approvals.view"),
    ("audit_log.index", _l("Audit log"), "audit.view"),
    ("admin.index", _l("Administration"), "admin.view"),
    ("controllers.index", _l("Controllers"), "live.view"),
    ("simulator.index", _l("Simulator"), "simulator.use"),
)

ROLE_LABELS = {
    "administrator": _l("Administrator"),
    "manager": _l("Manager"),
    "guard": _l("Guard"),
    "auditor": _l("Auditor"),
}
ALARM_STATE_LABELS = {
    "raised": _l("Raised"),
    "acknowledged": _l("Acknowledged"),
    "cleared": _l("Cleared"),
}
DEVICE_STATE_LABELS = {
    "online": _l("Online"),
    "offline": _l("Offline"),
    "locked": _l("Locked"),
    "unlocked": _l("Unlocked"),
    "open": _l("Open"),
    "closed": _l("Closed"),
    "held": _l("Held open"),
    "forced": _l("Forced open"),
    "tamper": _l("Tamper"),
    "running": _l("Running"),
    "locked_down": _l("Locked down"),
    "lifted": _l("Lockdown lifted"),
}
COMMAND_STATE_LABELS = {
    "queued": _l("Waiting for the controller"),
    "running": _l("Being carried out"),
    "done": _l("Done"),
    "failed": _l("Not carried out"),
}
DOOR_COMMAND_LABELS = {
    "unlock_door": _l("Unlock for a moment"),
    "lockdown": _l("Lockdown"),
    "lift_lockdown": _l("Lift the lockdown"),
}
AUTH_STATE_LABELS = {
    "pending": _l("Waiting for approval"),
    "approved": _l("Approved"),
    "revoked": _l("Revoked"),
}
TRAINING_LABELS = {
    "missing": _l("No training"),
    "expired": _l("Expired"),
    "expiring": _l("Expires soon"),
    "current": _l("Current"),
}
WEEKDAY_LABELS = {
    "mon": _l("Mon"),
    "tue": _l("Tue"),
    "wed": _l("Wed"),
    "thu": _l("Thu"),
    "fri": _l("Fri"),
    "sat": _l("Sat"),
    "sun": _l("Sun"),
}
CREDENTIAL_STATE_LABELS = {
    "active": _l("Active"),
    "inactive": _l("Inactive"),
    "lost": _l("Lost"),
    "blocked": _l("Blocked"),
    "locked": _l("Locked (wrong PINs)"),
    "returned": _l("Returned"),
}
ANTIPASSBACK_LABELS = {
    "off": _l("Off"),
    "alert": _l("Alert only"),
    "enforce": _l("Enforce"),
}
ESCORT_POLICY_LABELS = {
    "named": _l("Only the named escort"),
    "any": _l("Any authorized escort"),
}
INCIDENT_STATE_LABELS = {
    "open": _l("Open (being handled)"),
    "closed": _l("Closed (handled)"),
}
PERSON_KIND_LABELS = {"staff": _l("Staff"), "visitor": _l("Visitor")}
LOG_LABELS = {"events": _l("Event log"), "audit": _l("Audit log")}
FINDING_LABELS = {
    "unused_90d": _l("Not used for 90 days"),
    "training_expiring": _l("Training expires within 30 days"),
    "training_expired": _l("Training expired"),
    "designated_no_authorization": _l("Designated but holds no authorization"),
}
# product names, the same in every language
TECHNOLOGY_LABELS = {
    "felica": "FeliCa",
    "iso14443a": "ISO 14443A (MIFARE)",
    "em4100": "EM4100 (125 kHz)",
    "wiegand": "Wiegand",
    "osdp": "OSDP",
}
ID_KINDS = {
    "drivers_license": _l("Driver's license"),
    "passport": _l("Passport"),
    "residence_card": _l("Residence card"),
    "employee_id": _l("Employee ID card"),
    "other": _l("Other"),
}
DEVICE_KINDS = {
    "laptop": _l("Laptop"),
    "maintenance-laptop": _l("Maintenance laptop"),
    "smartphone": _l("Smartphone"),
    "tablet": _l("Tablet"),
    "usb-memory": _l("USB memory"),
    "external-disk": _l("External disk"),
    "camera": _l("Camera"),
    "other": _l("Other device"),
}


def nav_items() -> list[tuple[str, Any, str]]:
    if not current_user.is_authenticated:
        return []
    items = []
    for endpoint, label, perm in NAV:
        if endpoint == "simulator.index" and not current_app.config["NYUTAI_DEMO"]:
            continue
        if endpoint == "events_recent.index" and current_user.can("events.view"):
            continue  # the full log is in the menu already
        if current_user.can(perm):
            items.append((endpoint, label, perm))
    return items


def filter_args() -> dict[str, str]:
    """The current query arguments minus paging, to build the next link or the CSV link."""
    return {
        k: v
        for k, v in request.args.items()
        if k not in ("after", "before", "today_after") and v
    }


def _label(table: dict[str, Any]) -> Any:
    return lambda value: table.get(value or "", value or "")


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        nav_items=nav_items,
        filter_args=filter_args,
        schedule_text=format_schedule,
        area_name=area_name,
        person_tag=person_tag,
        decision_tag=decision_tag,
        role_label=_label(ROLE_LABELS),
        # directions, decisions, device kinds, audit actions/targets: domain.words
        decision_label=lambda code: word("decision", code, _locale()),
        direction_label=lambda code: word("direction", code, _locale()),
        device_kind_label=lambda code: word("device_kind", code, _locale()),
        audit_action_label=lambda code: word("audit_action", code, _locale()),
        audit_target_label=lambda code: word("audit_target", code, _locale()),
        audit_field_label=lambda code: word("audit_field", code, _locale()),
        alarm_state_label=_label(ALARM_STATE_LABELS),
        device_state_label=_label(DEVICE_STATE_LABELS),
        auth_state_label=_label(AUTH_STATE_LABELS),
        command_state_label=_label(COMMAND_STATE_LABELS),
        door_command_label=_label(DOOR_COMMAND_LABELS),
        training_label=_label(TRAINING_LABELS),
        technology_label=_label(TECHNOLOGY_LABELS),
        antipassback_label=_label(ANTIPASSBACK_LABELS),
        escort_policy_label=_label(ESCORT_POLICY_LABELS),
        weekday_label=_label(WEEKDAY_LABELS),
        credential_state_label=_label(CREDENTIAL_STATE_LABELS),
        device_label=_label(DEVICE_KINDS),
        id_kind_label=_label(ID_KINDS),
        incident_state_label=_label(INCIDENT_STATE_LABELS),
        person_kind_label=_label(PERSON_KIND_LABELS),
        log_label=_label(LOG_LABELS),
        finding_label=_label(FINDING_LABELS),
        ID_KINDS=ID_KINDS,
        DEVICE_KINDS=DEVICE_KINDS,
    )


def person_tag(person: Any) -> Markup:
    """A person's name, tagged when a visitor: the ``person_name`` macro's markup, built in
    Python because a Jinja macro call costs far more and the event log and dashboard call it
    for every row."""
    if not person:
        return Markup("")
    if person.kind == "visitor":
        return Markup(
            f'<span class="person visitor">{escape(person.name)} '
            f'<em class="tag">{_visitor_tag(_locale())}</em></span>'
        )
    return Markup(f'<span class="person">{escape(person.name)}</span>')


@lru_cache(maxsize=8)
def _visitor_tag(locale: str) -> Markup:
    return escape(_translations().ugettext("Visitor"))


@lru_cache(maxsize=256)  # a few decisions x two languages
def _decision_tag(value: str, locale: str) -> Markup:
    return Markup(
        f'<span class="decision {escape(value)}">{escape(word("decision", value, locale))}</span>'
    )


def decision_tag(value: str) -> Markup:
    """A decision with its label (the ``decision`` macro's markup; see ``person_tag``)."""
    return _decision_tag(str(value), _locale())


def _locale() -> str:
    return locale_code()  # once per request, not once per label


def area_name(area: Any) -> str:
    """The area's name in the operator's language (Japanese is always there)."""
    if area is None:
        return ""
    if _locale() != "ja" and getattr(area, "name_en", None):
        return str(area.name_en)
    return str(area.name)
