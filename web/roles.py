"""Who may do what. Every view declares one permission; a view without one is refused.

The check runs in ``before_request`` for every endpoint, so forgetting the decorator
gives a 403, never an open page (deny by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from db.models import Role

F = TypeVar("F", bound=Callable[..., object])

PUBLIC = "public"  # no login needed (login page, static files, health)
LOGGED_IN = "logged_in"  # any operator (logout, language, own profile)

G, M, A, AU = Role.GUARD, Role.MANAGER, Role.ADMINISTRATOR, Role.AUDITOR

PERMISSIONS: dict[str, frozenset[Role]] = {
    # live situation: everyone who works the console sees it
    "live.view": frozenset({G, M, A, AU}),
    "alarms.view": frozenset({G, M, A, AU}),
    "alarms.handle": frozenset({G, M}),
    "visitors.view": frozenset({G, M, AU}),
    "visitors.handle": frozenset({G, M}),
    # the host-notification queue's status (issue 13): who manages the desk and the site
    "notifications.view": frozenset({M, A}),
    "simulator.use": frozenset({G, M, A}),
    # doors and area lockdowns: everyone sees the state; remote control (momentary unlock,
    # lockdown and lifting it; issue 13) is for managers and administrators, never guards
    "doors.view": frozenset({G, M, A, AU}),
    "doors.control": frozenset({M, A}),
    # records and reviews
    "events.view": frozenset({M, AU}),
    "events.export": frozenset({M, AU}),
    # the guard's search at the desk: the last 24 hours only (web.views.events_recent)
    "events.recent": frozenset({G, M, AU}),
    "people.view": frozenset({M, AU}),
    "people.edit": frozenset({M}),
    "authorizations.view": frozenset({M, AU}),
    "authorizations.edit": frozenset({M}),
    # the guard on duty resets a wrong in/out record (issue 3); managers too
    "antipassback.forgive": frozenset({G, M}),
    "audit.view": frozenset({A, AU}),
    "integrity.verify": frozenset({AU}),
    # evidence (issue 6): monthly report, incidents, access review
    "reports.view": frozenset({M, AU}),
    "incidents.view": frozenset({G, M, AU}),
    "incidents.close": frozenset({M}),
    "review.view": frozenset({M, AU}),
    "review.decide": frozenset({M}),
    # four eyes (issue 12): the list of requests, and asking/deciding (who may decide which
    # kind is checked again per kind in db.approvals)
    "approvals.view": frozenset({M, A, AU}),
    "approvals.decide": frozenset({M, A}),
    # site administration
    "admin.view": frozenset({A, AU}),
    "admin.edit": frozenset({A}),
}


def requires(permission: str) -> Callable[[F], F]:
    """Mark a view with the permission it needs (checked centrally, see web.auth)."""
    if permission not in PERMISSIONS and permission not in (PUBLIC, LOGGED_IN):
        raise ValueError(f"unknown permission {permission!r}")

    def mark(view: F) -> F:
        view._nyutai_permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def allowed(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    if permission == LOGGED_IN:
        return True
    try:
        return Role(role) in PERMISSIONS.get(permission, frozenset())
    except ValueError:
        return False
