"""Areas locked down from the console, as the controllers last recorded them.

A lockdown is kept as a ``device_status`` row (kind ``lockdown``, key = the area's code),
written by the controller in the transaction of its event. The controller reads it back at
start (the lockdown survives a restart); the console shows it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import DeviceStatus
from domain.vocabulary import LOCKDOWN_STATUS, LockdownState

# the longest reason kept for a remote unlock or a lockdown (the console and the controller)
MAX_REASON = 1000


def active_lockdowns(session: Session) -> dict[str, dict[str, Any]]:
    """Area code -> detail (who, why, since) of every area locked down now."""
    return {
        key: dict(detail or {})
        for key, detail in session.execute(
            select(DeviceStatus.key, DeviceStatus.detail).where(
                DeviceStatus.kind == LOCKDOWN_STATUS,
                DeviceStatus.state == LockdownState.ACTIVE,
            )
        )
    }
