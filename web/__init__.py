"""The nyutai web console (Flask): ``create_app`` builds it from a site file.

Blueprints, one per area of the console, live in ``web.views``; each resource
(database, login, i18n, security) has its own ``init_app``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from domain.config import SiteConfig, load_config


def create_app(
    config: SiteConfig | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    app = Flask(__name__)
    if config is None and test_config is None and os.environ.get("NYUTAI_CONFIG"):
        config = load_config(os.environ["NYUTAI_CONFIG"])
    app.config.update(
        NYUTAI_SITE=config,
        NYUTAI_DATABASE_URL=config.database_url if config else None,
        NYUTAI_IDLE_TIMEOUT_MINUTES=config.web.idle_timeout_minutes if config else 30,
        NYUTAI_DEMO=config.controller.demo if config else False,
        NYUTAI_TIMEZONE=config.site.timezone if config else "Asia/Tokyo",
        NYUTAI_LOCALES=("ja", "en"),
        NYUTAI_ENROL_TIMEOUT_SECONDS=30,
        BABEL_DEFAULT_LOCALE=config.web.default_locale if config else "ja",
        BABEL_DEFAULT_TIMEZONE="UTC",
        SESSION_COOKIE_NAME="nyutai_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the CSRF token lives as long as the (idle-limited) session
        MAX_CONTENT_LENGTH=1024 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    if config is not None:
        from web.security import read_or_create_secret

        app.config["SECRET_KEY"] = read_or_create_secret(
            config.data_path(config.web.secret_key_file)
        )
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("no secret key: give a site config (data_dir) or SECRET_KEY")
    if not app.config.get("NYUTAI_DATABASE_URL"):
        raise RuntimeError("no database: give a site config or NYUTAI_DATABASE_URL")

    from web import auth, db, i18n, refusals, refused_audit, security, views

    db.init_app(app, app.config["NYUTAI_DATABASE_URL"])
    i18n.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    views.init_app(app)
    refusals.init_app(app)
    refused_audit.init_app(app)
    return app
