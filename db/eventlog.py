"""Appending to the hash-chained logs (events and audit).

Each row gets ``seq`` (previous + 1) and ``hash`` = SHA-256(prev_hash || canonical(row)),
see ``db.chain`` for the canonical serialization. The controller is the only writer of
events; audit rows come from the web and the CLI, so appends lock the chain head.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.chain import GENESIS, canonical_audit, canonical_event, chain_hash
from db.models import AuditLog, Event


def _head(session: Session, model: type[Event] | type[AuditLog]) -> tuple[int, str]:
    row = session.execute(
        select(model.seq, model.hash)
        .where(model.seq.is_not(None))
        .order_by(model.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def append_event(session: Session, event: Event) -> Event:
    """Add ``event`` to the chain (flushes; the caller commits)."""
    seq, prev = _head(session, Event)
    event.seq = seq + 1
    event.prev_hash = prev
    event.hash = chain_hash(prev, canonical_event(event))
    session.add(event)
    session.flush()
    return event


def append_audit(session: Session, row: AuditLog) -> AuditLog:
    """Add an audit row to its chain (flushes; the caller commits)."""
    seq, prev = _head(session, AuditLog)
    row.seq = seq + 1
    row.prev_hash = prev
    row.hash = chain_hash(prev, canonical_audit(row))
    session.add(row)
    session.flush()
    return row
