"""The nyutai web console (Flask): ``create_app`` builds it from a site file.

Blueprints, one per area of the console, live in ``web.views``; each resource
(database, login, i18n, security) has its own ``init_app``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from domain.config import DEFAULT_TIMEZONE, MailSection, SiteConfig, load_config


def create_app(
    config: SiteConfig | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    app = Flask(__name__)
    from web.ids import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    if config is None and test_config is None and os.environ.get("NYUTAI_CONFIG"):
        # started by a WSGI server (not by ``nyutai web``): this is the process start
        from db.files import keep_files_private

        keep_files_private()
        config = load_config(os.environ["NYUTAI_CONFIG"])
    app.config.update(
        NYUTAI_SITE=config,
        NYUTAI_DATABASE_URL=config.database_url if config else None,
        NYUTAI_IDLE_TIMEOUT_MINUTES=config.web.idle_timeout_minutes if config else 30,
        NYUTAI_SESSION_LIFETIME_HOURS=config.web.session_lifetime_hours if config else 12,
        NYUTAI_REAUTH_MINUTES=config.web.reauth_minutes if config else 5,
        NYUTAI_DEMO=config.controller.demo if config else False,
        NYUTAI_TIMEZONE=config.site.timezone if config else DEFAULT_TIMEZONE,
        NYUTAI_TRUSTED_PROXIES=tuple(config.web.trusted_proxies) if config else (),
        NYUTAI_LOCALES=("ja", "en"),
        NYUTAI_ENROL_TIMEOUT_SECONDS=30,
        # visitors' photos (and other files) live here; tests point it at a tmp folder
        NYUTAI_DATA_DIR=config.data_dir if config else None,
        NYUTAI_MAIL=config.mail if config else MailSection(),
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

    from web import auth, db, i18n, photos, refusals, refused_audit, security, views
    from web.proxy import install_trusted_proxies

    install_trusted_proxies(app, app.config["NYUTAI_TRUSTED_PROXIES"])

    db.init_app(app, app.config["NYUTAI_DATABASE_URL"])
    i18n.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    views.init_app(app)
    photos.init_app(app)
    refusals.init_app(app)
    refused_audit.init_app(app)
    return app
