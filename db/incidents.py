"""Section 6 incidents: opened from alarms (with their evidence), closed by a manager.

The controller calls ``open_incident_for_alarm`` right after it raises an alarm; the nightly
verification job calls ``open_integrity_incident`` when a log fails verification.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import Alarm, AuditLog, Incident, IncidentState, Operator, Role
from db.types import utcnow
from domain.reasons import ALARM_TEXT, AlarmKind

# Alarm kinds that are reportable incidents (forced/held open, tamper, duress, escort
# violations, tailgating, log integrity); the others are operational and stay alarms.
INCIDENT_ALARM_KINDS = frozenset(
    {
        AlarmKind.DOOR_FORCED,
        AlarmKind.DOOR_HELD,
        AlarmKind.TAMPER,
        AlarmKind.DURESS,
        AlarmKind.ESCORT_LEFT_VISITOR,
        AlarmKind.TWO_PERSON_VIOLATION,
        AlarmKind.TAILGATING,
        AlarmKind.INTEGRITY_FAILURE,
    }
)
CLOSING_ROLES = frozenset({Role.MANAGER})


class IncidentError(ValueError):
    """An incident cannot be closed as asked (reason in ``code``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _summary(kind: str, alarm: Alarm) -> str:
    try:
        text = ALARM_TEXT[AlarmKind(kind)]
        head = f"{text.ja} / {text.en}"
    except ValueError:
        head = kind
    where = []
    if alarm.door is not None:
        where.append(alarm.door.name)
    elif alarm.area is not None:
        where.append(alarm.area.name)
    if alarm.reader:
        where.append(alarm.reader)
    return head + (f" ({', '.join(where)})" if where else "")


def open_incident_for_alarm(
    session: Session, alarm: Alarm, evidence_event_ids: list[int], snapshot_ids: list[int]
) -> Incident | None:
    """Open an incident for ``alarm`` if its kind is reportable (flushes; caller commits)."""
    if alarm.kind not in INCIDENT_ALARM_KINDS:
        return None
    if alarm.id is None:
        session.flush()  # the incident links the alarm by id
    events = sorted(set(evidence_event_ids) | ({alarm.event_id} if alarm.event_id else set()))
    snaps = sorted(set(snapshot_ids) | ({alarm.snapshot_id} if alarm.snapshot_id else set()))
    area_id = alarm.area_id
    if area_id is None and alarm.door is not None:
        area_id = alarm.door.area_id
    inc = Incident(
        kind=alarm.kind,
        state=IncidentState.OPEN,
        opened_at=alarm.raised_at or utcnow(),
        alarm_id=alarm.id,
        area_id=area_id,
        summary=_summary(alarm.kind, alarm),
        evidence={"events": events, "snapshots": snaps},
    )
    session.add(inc)
    session.flush()
    return inc


def open_integrity_incident(session: Session, findings: list[str]) -> Incident | None:
    """Raise an integrity alarm and incident, unless one for the same findings is still open."""
    detail: dict[str, Any] = {"findings": findings[:20]}
    open_ones = session.scalars(
        select(Incident).where(
            Incident.kind == AlarmKind.INTEGRITY_FAILURE, Incident.state == IncidentState.OPEN
        )
    ).all()
    for inc in open_ones:
        if (inc.evidence or {}).get("findings") == detail["findings"]:
            return None  # already reported and not yet handled: no new incident each night
    now = utcnow()
    alarm = Alarm(kind=AlarmKind.INTEGRITY_FAILURE, raised_at=now, detail=detail)
    session.add(alarm)
    session.flush()
    opened = open_incident_for_alarm(session, alarm, [], [])
    assert opened is not None  # integrity_failure is an incident kind
    inc = opened
    inc.evidence = {"events": [], "snapshots": [], **detail}
    inc.summary += ": " + (findings[0] if findings else "")
    session.flush()
    return inc


def close_incident(
    session: Session, incident_id: int, operator: Operator, cause: str, prevention: str
) -> Incident:
    """A manager closes an incident with its cause and prevention notes (audited)."""
    if operator.role not in CLOSING_ROLES or not operator.active:
        raise IncidentError("not_manager", "only an active manager may close an incident")
    if not cause.strip() or not prevention.strip():
        raise IncidentError("notes_required", "cause and prevention notes are both required")
    inc = session.get(Incident, incident_id)
    if inc is None:
        raise IncidentError("unknown_incident", f"no incident {incident_id}")
    if inc.state == IncidentState.CLOSED:
        raise IncidentError("already_closed", f"incident {incident_id} is already closed")
    before = {"state": inc.state, "cause": inc.cause, "prevention": inc.prevention}
    inc.state = IncidentState.CLOSED
    inc.cause, inc.prevention = cause.strip(), prevention.strip()
    inc.closed_at, inc.closed_by = utcnow(), operator.id
    append_audit(
        session,
        AuditLog(
            occurred_at=inc.closed_at,
            operator_id=operator.id,
            username=operator.username,
            action="incident.close",
            target_type="incident",
            target_id=str(inc.id),
            before=before,
            after={"state": inc.state, "cause": inc.cause, "prevention": inc.prevention},
        ),
    )
    return inc
