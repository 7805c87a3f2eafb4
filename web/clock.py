"""The console's clock: UTC now, replaceable per app (``NYUTAI_CLOCK``) so tests can move
time forward (session lifetimes, TOTP steps, re-authentication) without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import current_app

from db.types import utcnow


def now() -> datetime:
    clock: Callable[[], datetime] | None = current_app.config.get("NYUTAI_CLOCK")
    return clock() if clock is not None else utcnow()
