"""The one training-validity rule (3(3): staff are trained at least once a year).

A training counts for 12 months: through the same date a year later (the anniversary day
itself is still valid; "more than 12 months" starts the day after). A training on 29 February
is valid through 28 February of the next year. The door, the console's escort list and the
access review all ask this module, so they cannot disagree on any date.
"""

from __future__ import annotations

import enum
from datetime import date, timedelta

TRAINING_VALID_MONTHS = 12
EXPIRING_WITHIN = timedelta(days=30)  # the console and the review warn this long before


class TrainingState(enum.StrEnum):
    MISSING = "missing"
    EXPIRED = "expired"
    EXPIRING = "expiring"  # still valid, runs out within EXPIRING_WITHIN
    CURRENT = "current"


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has no such day."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def valid_through(completed_on: date) -> date:
    """The last day on which a training completed on ``completed_on`` counts."""
    return add_months(completed_on, TRAINING_VALID_MONTHS)


def training_current(last: date | None, today: date) -> bool:
    return last is not None and today <= valid_through(last)


def training_state(last: date | None, today: date) -> TrainingState:
    if last is None:
        return TrainingState.MISSING
    until = valid_through(last)
    if today > until:
        return TrainingState.EXPIRED
    if until - today < EXPIRING_WITHIN:
        return TrainingState.EXPIRING
    return TrainingState.CURRENT


def current_since(today: date) -> date:
    """The earliest completion date whose training is still valid ``today``.

    ``training_current(last, today)`` is ``last >= current_since(today)``; queries use this
    bound so the database answers "trained within 12 months" from an index.
    """
    d = add_months(today, -TRAINING_VALID_MONTHS)
    while valid_through(d - timedelta(days=1)) >= today:
        d -= timedelta(days=1)
    while valid_through(d) < today:
        d += timedelta(days=1)
    return d
