"""Synthetic rows for the evidence tests, written through the real append functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from db.eventlog import append_audit, append_event
from db.models import AuditLog, Event

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def add_events(factory: sessionmaker[Session], n: int, start: datetime = T0) -> None:
    with factory() as s:
        for i in range(n):
            append_event(
                s,
                Event(
                    occurred_at=start + timedelta(minutes=i),
                    kind="presentation",
                    decision="granted" if i % 3 else "denied",
                    reason="granted" if i % 3 else "unknown_card",
                    reader="sr-in",
                    direction="in",
                    raw_card_id=f"01020304{i:08X}",
                    detail={"n": i},
                ),
            )
        s.commit()


def add_audits(factory: sessionmaker[Session], n: int, start: datetime = T0) -> None:
    with factory() as s:
        for i in range(n):
            append_audit(
                s,
                AuditLog(
                    occurred_at=start + timedelta(minutes=i),
                    username="admin",
                    action="person.update",
                    target_type="person",
                    target_id=str(i),
                    before={"name": "山田"},
                    after={"name": f"山田 {i}"},
                ),
            )
        s.commit()
