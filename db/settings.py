"""Site settings an administrator edits at run time (SiteSetting rows, JSON values).

Known keys and their defaults live in ``DEFAULTS``. ``normalise_setting`` holds the rules:
every way a setting is written (the web form, ``nyutai retention set``) goes through
``set_setting``, which applies them, and every read checks the stored value again, so a row
written before a rule existed (or by hand in the database) cannot turn into a purge of the
running contract's records or a 500 on a report page.
"""

from __future__ import annotations

import logging
import re
from datetime import date, time
from typing import Any

from sqlalchemy.orm import Session

from db.models import SiteSetting
from db.types import utcnow

log = logging.getLogger(__name__)

CONTRACT_END = "contract_end"  # "YYYY-MM-DD" (a date in the site's zone) or None while unknown
RETENTION_YEARS = "retention_years"  # records kept this many years after contract end
END_OF_DAY = "end_of_day"  # "HH:MM" site wall time: people still inside then raise an alarm

DEFAULTS: dict[str, Any] = {
    CONTRACT_END: None,
    RETENTION_YEARS: 1,
    END_OF_DAY: "20:00",
}

# 5(6): at least one year after the contract end. More than 30 years is a typo, not a policy
# (a municipality's longest retention class is 30 years), and would keep personal data forever.
MIN_RETENTION_YEARS = 1
MAX_RETENTION_YEARS = 30
# a contract end outside these years is a typo (e.g. 0207-03-31)
CONTRACT_YEARS = (2000, 2100)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class SettingError(ValueError):
    """A setting key is unknown or its value has the wrong form; ``code`` says which rule."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def normalise_setting(key: str, value: Any) -> Any:
    """The value to store for ``key``, or SettingError naming the rule it breaks.

    Accepts what a person types as well as JSON values: ``5`` or ``"5"`` years,
    ``"2027-03-31"``, ``None`` (contract end unknown), ``"19:30"``.
    """
    if key not in DEFAULTS:
        raise SettingError(
            "setting_unknown", f"unknown setting {key!r} (one of: {', '.join(DEFAULTS)})"
        )
    if key == RETENTION_YEARS:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(
                "retention_years_range",
                f"retention_years must be a whole number of years, not {value!r}",
            )
        if not MIN_RETENTION_YEARS <= value <= MAX_RETENTION_YEARS:
            raise SettingError(
                "retention_years_range",
                f"retention_years must be between {MIN_RETENTION_YEARS} and "
                f"{MAX_RETENTION_YEARS} (got {value})",
            )
        return value
    if key == CONTRACT_END:
        if value is None or value == "":
            return None
        try:
            if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
                raise ValueError
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise SettingError(
                "contract_end_date", f"contract_end must be a date YYYY-MM-DD, not {value!r}"
            ) from None
        if not CONTRACT_YEARS[0] <= day.year <= CONTRACT_YEARS[1]:
            raise SettingError(
                "contract_end_date",
                f"contract_end must lie between {CONTRACT_YEARS[0]} and {CONTRACT_YEARS[1]}",
            )
        return day.isoformat()
    # END_OF_DAY
    if not isinstance(value, str) or not _HHMM.fullmatch(value.strip()):
        raise SettingError("end_of_day_time", f"end_of_day must be a time HH:MM, not {value!r}")
    return value.strip()


def get_setting(session: Session, key: str) -> Any:
    """The stored value (checked by the same rules), or the default when none is stored.

    A stored value that breaks the rules raises SettingError: each caller decides what is
    safe (the report falls back to the default day end; a purge is refused).
    """
    if key not in DEFAULTS:
        raise SettingError("setting_unknown", f"unknown setting {key!r}")
    row = session.get(SiteSetting, key)
    if row is None:
        return DEFAULTS[key]
    try:
        return normalise_setting(key, row.value)
    except SettingError as exc:
        raise SettingError("setting_invalid", f"the stored {key} is not valid: {exc}") from None


def stored_value(session: Session, key: str) -> Any:
    """The raw stored value (or the default), valid or not: for before/after in audit rows."""
    row = session.get(SiteSetting, key)
    return DEFAULTS.get(key) if row is None else row.value


def set_setting(session: Session, key: str, value: Any) -> Any:
    """Check and store a setting; returns the stored (normalised) value.

    Flushes; the caller commits and audits. Raises SettingError, storing nothing.
    """
    value = normalise_setting(key, value)
    row = session.get(SiteSetting, key)
    if row is None:
        session.add(SiteSetting(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()
    session.flush()
    return value


def check_setting(key: str, value: Any) -> Any:
    """The value ``key`` would be stored as, or SettingError (nothing is stored): what an
    approval request checks before asking a second person."""
    return normalise_setting(key, value)


def contract_end(session: Session) -> date | None:
    """The contract end; SettingError when the stored value is not a valid date."""
    v = get_setting(session, CONTRACT_END)
    return None if v is None else date.fromisoformat(v)


def end_of_day(session: Session) -> time:
    """The day end for the still-inside check; the default when the stored value is bad
    (a report or the nightly check must still run; the bad value is logged)."""
    try:
        return time.fromisoformat(get_setting(session, END_OF_DAY))
    except SettingError as exc:
        log.warning("%s; using the default %s", exc, DEFAULTS[END_OF_DAY])
        return time.fromisoformat(DEFAULTS[END_OF_DAY])
