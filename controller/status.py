"""Publishing device states (readers, doors, the controller itself) for the web."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import DeviceStatus


def publish(
    session: Session,
    kind: str,
    key: str,
    state: str,
    now: datetime,
    *,
    detail: dict[str, Any] | None = None,
    last_card: str | None = None,
    controller: str | None = None,
) -> None:
    row = session.scalar(
        select(DeviceStatus).where(DeviceStatus.kind == kind, DeviceStatus.key == key)
    )
    if row is None:
        row = DeviceStatus(kind=kind, key=key, state=state, updated_at=now)
        session.add(row)
    row.state = state
    row.updated_at = now
    if controller is not None:
        row.controller = controller
    if detail is not None:
        row.detail = detail
    if last_card is not None:
        row.last_card = last_card
