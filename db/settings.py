"""Site settings an administrator edits at run time (SiteSetting rows, JSON values).

Known keys and their defaults live in ``DEFAULTS``; an unknown key is a programming error.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from sqlalchemy.orm import Session

from db.models import SiteSetting
from db.types import utcnow

CONTRACT_END = "contract_end"  # "YYYY-MM-DD" (a date in the site's zone) or None while unknown
RETENTION_YEARS = "retention_years"  # records kept this many years after contract end
END_OF_DAY = "end_of_day"  # "HH:MM" site wall time: people still inside then raise an alarm

DEFAULTS: dict[str, Any] = {
    CONTRACT_END: None,
    RETENTION_YEARS: 1,
    END_OF_DAY: "20:00",
}


class SettingError(ValueError):
    """A setting key is unknown or its value has the wrong form."""


def get_setting(session: Session, key: str) -> Any:
    if key not in DEFAULTS:
        raise SettingError(f"unknown setting {key!r}")
    row = session.get(SiteSetting, key)
    return DEFAULTS[key] if row is None else row.value


def set_setting(session: Session, key: str, value: Any) -> None:
    """Store a setting after checking its form (flushes; the caller commits and audits)."""
    _check(key, value)
    row = session.get(SiteSetting, key)
    if row is None:
        session.add(SiteSetting(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()
    session.flush()


def check_setting(key: str, value: Any) -> None:
    """Raise SettingError if ``value`` is not a valid value for ``key`` (nothing is stored)."""
    _check(key, value)


def _check(key: str, value: Any) -> None:
    if key not in DEFAULTS:
        raise SettingError(f"unknown setting {key!r}")
    try:
        if key == CONTRACT_END and value is not None:
            date.fromisoformat(value)
        elif key == RETENTION_YEARS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingError("retention_years must be a whole number of at least 1")
        elif key == END_OF_DAY:
            time.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SettingError):
            raise
        raise SettingError(f"{key}: bad value {value!r} ({exc})") from None


def contract_end(session: Session) -> date | None:
    v = get_setting(session, CONTRACT_END)
    return None if v is None else date.fromisoformat(v)


def end_of_day(session: Session) -> time:
    return time.fromisoformat(get_setting(session, END_OF_DAY))
