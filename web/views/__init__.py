"""The console's blueprints, one per area of the UI."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from web import ui
    from web.views import (
        admin,
        alarms,
        api,
        audit_log,
        authorizations,
        controllers,
        dashboard,
        doors,
        events,
        events_recent,
        incidents,
        live,
        notifications,
        occupancy,
        people,
        people_csv,
        reports,
        review,
        simulator,
        visitors,
    )

    ui.init_app(app)
    for module in (
        dashboard,
        live,
        occupancy,
        events,
        events_recent,
        authorizations,
        people,
        people_csv,
        visitors,
        notifications,
        alarms,
        doors,
        incidents,
        review,
        reports,
        audit_log,
        simulator,
        admin,
        controllers,
        api,
    ):
        app.register_blueprint(module.bp)
    from web import approvals, mfa

    app.register_blueprint(mfa.bp)
    app.register_blueprint(approvals.bp)
    from web.security import csrf

    csrf.exempt(api.bp)  # read-only, token-authenticated: no cookies, so no CSRF to fear
