"""Every refusal is logged: bad input and forbidden requests leave a trace for operations.

A refused request (4xx) and every error message shown to an operator are logged with the
method, path, status and operator, never with the submitted values (they may hold a
password or PIN).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, message_flashed, request
from flask_login import current_user

log = logging.getLogger("nyutai.web.refusals")

# 404s for missing static files or probes are noise; 401 is the login redirect path
QUIET_STATUSES = frozenset({401})


def _who() -> str:
    try:
        return str(current_user.username) if current_user.is_authenticated else "anonymous"
    except Exception:  # outside a login context (errors raised very early)
        return "unknown"


def _log_refused_response(response: Response) -> Response:
    if 400 <= response.status_code < 500 and response.status_code not in QUIET_STATUSES:
        log.warning(
            "refused %s %s -> %s (operator %s)",
            request.method,
            request.path,
            response.status_code,
            _who(),
        )
    return response


def _log_error_message(sender: Flask, message: str, category: str, **_: Any) -> None:
    if category == "error":
        log.warning(
            "refused %s %s: %s (operator %s)", request.method, request.path, message, _who()
        )


def init_app(app: Flask) -> None:
    app.after_request(_log_refused_response)
    message_flashed.connect(_log_error_message, app)
