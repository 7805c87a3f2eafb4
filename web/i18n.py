"""Japanese first, English selectable; times shown in the site's zone (``[site] timezone``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, has_app_context, request, session
from flask_babel import Babel, get_locale, get_translations
from flask_login import current_user

from db.types import utcnow
from domain.reasons import ALARM_TEXT, AlarmKind, sentence
from domain.zones import zone_label

LOCALES = ("ja", "en")
babel = Babel()


def select_locale() -> str:
    chosen = session.get("locale")
    if chosen in LOCALES:
        return str(chosen)
    if request.path.startswith("/api/"):
        return "en"
    default: str = current_app.config["BABEL_DEFAULT_LOCALE"]
    return default


def site_zone() -> ZoneInfo:
    """The site's zone (``[site] timezone``, checked when the site file was loaded)."""
    return ZoneInfo(current_app.config["NYUTAI_TIMEZONE"])


def site_zone_label() -> str:
    """The zone's short name for a column of times ("JST"; a zone with summer time by its
    name, "Europe/London")."""
    return zone_label(site_zone(), utcnow().astimezone(site_zone()).year)


def local(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An aware UTC time shown in the site's zone."""
    if dt is None:
        return ""
    return dt.astimezone(site_zone()).strftime(fmt)


def locale_code() -> str:
    """The operator's language ("ja", "en"), looked up once per request and locale.

    Flask-Babel's ``get_locale`` walks three context look-ups and builds the name each time;
    an event log page asked it about 250 times (every reason, direction and area label of
    50 rows). Cached like ``_translations``: tied to the locale object Flask-Babel keeps for
    the request, so ``flask_babel.refresh()`` is seen at once."""
    if not has_app_context():
        return str(get_locale() or "ja")
    ctx = g._get_current_object()
    locale = getattr(getattr(ctx, "_flask_babel", None), "babel_locale", None)
    cached = getattr(ctx, "_nyutai_locale", None)
    if cached is not None and locale is not None and cached[0] is locale:
        return str(cached[1])
    code = str(get_locale() or "ja")
    locale = getattr(getattr(ctx, "_flask_babel", None), "babel_locale", None)
    ctx._nyutai_locale = (locale, code)
    return code


def reason_text(code: str | None) -> str:
    return sentence(code, locale_code()) if code else ""


def alarm_text(kind: str | None) -> str:
    """An alarm kind's name (the reason table has some of the same codes as sentences)."""
    if not kind:
        return ""
    try:
        text = ALARM_TEXT[AlarmKind(kind)]
    except ValueError:
        return kind
    return text.ja if locale_code() == "ja" else text.en


def incident_summary(summary: str | None, kind: str | None) -> str:
    """An incident's stored summary ("ja / en (place)", see db.incidents) with the bilingual
    head replaced by the alarm name in the operator's language."""
    if not summary:
        return ""
    try:
        text = ALARM_TEXT[AlarmKind(kind or "")]
    except ValueError:
        return summary
    head = f"{text.ja} / {text.en}"
    if summary.startswith(head):
        return alarm_text(kind) + summary[len(head) :]
    return summary


def _translations() -> Any:
    """The request's catalogue for templates, looked up once per request and locale.

    Flask-Babel's own lookup (three context look-ups and the locale's name built) ran for
    each of the hundreds of strings a page translates: a tenth of a long page's time. The
    cache is tied to the locale object Flask-Babel keeps for the request, so a
    ``flask_babel.refresh()`` (the operator changed the language) is seen at once; should
    Flask-Babel keep it elsewhere one day, nothing is cached and every call looks up."""
    ctx = g._get_current_object()
    locale = getattr(getattr(ctx, "_flask_babel", None), "babel_locale", None)
    cached = getattr(ctx, "_nyutai_translations", None)
    if cached is not None and locale is not None and cached[0] is locale:
        return cached[1]
    translations = get_translations()
    locale = getattr(getattr(ctx, "_flask_babel", None), "babel_locale", None)
    ctx._nyutai_translations = (locale, translations)
    return translations


def init_app(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories="translations",
        default_domain="messages",
    )
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.filters["local"] = local
    app.jinja_env.filters["reason"] = reason_text
    app.jinja_env.filters["alarm"] = alarm_text
    app.jinja_env.filters["incident_summary"] = incident_summary
    app.jinja_env.globals["current_locale"] = locale_code
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["site_zone_label"] = site_zone_label
    _ = current_user  # imported so templates can rely on Flask-Login's context processor
