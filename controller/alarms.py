"""Alarm rows: raise, acknowledge, clear, restore. Outputs are driven by the daemon."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from db.models import Alarm, AlarmState
from domain.reasons import AUDIBLE_ALARMS, AlarmKind


def raise_alarm(
    session: Session,
    kind: AlarmKind,
    now: datetime,
    *,
    door_id: int | None = None,
    area_id: int | None = None,
    reader: str | None = None,
    person_id: int | None = None,
    event_id: int | None = None,
    silent: bool = False,
    detail: dict[str, Any] | None = None,
) -> Alarm:
    alarm = Alarm(
        kind=kind.value,
        state=AlarmState.RAISED,
        silent=silent,
        door_id=door_id,
        area_id=area_id,
        reader=reader,
        person_id=person_id,
        event_id=event_id,
        raised_at=now,
        detail=detail,
    )
    session.add(alarm)
    session.flush()
    return alarm


def audible_unacknowledged(session: Session, controller: str | None = None) -> bool:
    """True while any audible, non-silent alarm waits for acknowledgement; ``controller``:
    only that controller's alarms (and those no controller raised) sound its siren."""
    kinds = [k.value for k in AUDIBLE_ALARMS]
    q = select(Alarm.id).where(
        Alarm.state == AlarmState.RAISED, Alarm.kind.in_(kinds), Alarm.silent.is_(False)
    )
    if controller is not None:
        q = q.where(or_(Alarm.controller == controller, Alarm.controller.is_(None)))
    return session.scalar(q.limit(1)) is not None


def _alarm_in_state(session: Session, alarm_id: int, expected: AlarmState, why: str) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise LookupError(f"no alarm {alarm_id}")
    if alarm.state != expected:
        raise ValueError(f"alarm {alarm_id} is {alarm.state}: {why}")
    return alarm


def acknowledge(
    session: Session, alarm_id: int, operator_id: int | None, comment: str, now: datetime
) -> Alarm:
    alarm = _alarm_in_state(
        session, alarm_id, AlarmState.RAISED, "only a raised alarm is acknowledged"
    )
    alarm.state = AlarmState.ACKNOWLEDGED
    alarm.acknowledged_at = now
    alarm.acknowledged_by = operator_id
    alarm.ack_comment = comment
    return alarm


def clear(
    session: Session, alarm_id: int, operator_id: int | None, comment: str, now: datetime
) -> Alarm:
    # an alarm stays until acknowledged: clearing skips nobody's attention
    alarm = _alarm_in_state(
        session, alarm_id, AlarmState.ACKNOWLEDGED, "it must be acknowledged before it is cleared"
    )
    alarm.state = AlarmState.CLEARED
    alarm.cleared_at = now
    alarm.cleared_by = operator_id
    if comment:
        alarm.ack_comment = (alarm.ack_comment or "") + f"\n{comment}"
    return alarm


def _unrestored(kind: AlarmKind, door_id: int | None, reader: str | None) -> Select[Alarm]:
    """Alarms of this kind whose condition has not ended (and that nobody cleared)."""
    q = select(Alarm).where(
        Alarm.kind == kind.value, Alarm.restored_at.is_(None), Alarm.state != AlarmState.CLEARED
    )
    if door_id is not None:
        q = q.where(Alarm.door_id == door_id)
    if reader is not None:
        q = q.where(Alarm.reader == reader)
    return q


def restore_open(
    session: Session,
    kind: AlarmKind,
    now: datetime,
    *,
    door_id: int | None = None,
    reader: str | None = None,
) -> list[Alarm]:
    """Mark the condition of matching open alarms as ended (door closed, reader back)."""
    alarms = list(session.scalars(_unrestored(kind, door_id, reader)))
    for alarm in alarms:
        alarm.restored_at = now
    return alarms


def open_alarm(session: Session, kind: AlarmKind, *, reader: str | None = None) -> Alarm | None:
    """The newest alarm of this kind whose condition has not ended."""
    return session.scalar(_unrestored(kind, None, reader).order_by(Alarm.id.desc()).limit(1))
