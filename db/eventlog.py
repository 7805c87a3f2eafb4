"""Appending to the hash-chained logs (events and audit).

Each row gets ``seq`` (previous + 1), ``prev_hash`` (the previous row's hash) and ``hash`` =
SHA-256(prev_hash || canonical(row)); see ``db.chain`` and docs/evidence.md.

Concurrency: the controller is the only writer of events, but audit rows come from several
web threads/processes and the CLI. Reading the chain head and inserting the next row must be
one step, so an append first takes the log's write lock for the rest of the transaction:

- SQLite: a no-op ``UPDATE`` on the log table makes the driver ``BEGIN`` and SQLite take its
  single RESERVED write lock (waiting up to the busy timeout) before the head is read.
- PostgreSQL: ``pg_advisory_xact_lock`` with one fixed key per log, released at commit.

The unique ``seq`` column is the last line of defence: a writer that bypassed the lock makes
the flush fail; the append then rereads the head and retries inside a savepoint.
Callers keep transactions short after appending: the lock is held until they commit.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.chain import GENESIS, canonical_audit, canonical_event, chain_hash
from db.models import AuditLog, Event
from domain.config import DEFAULT_CONTROLLER_ID

log = logging.getLogger(__name__)

# Arbitrary fixed 64-bit keys for pg_advisory_xact_lock, one per chained table.
PG_LOCK_KEYS = {"events": 0x6E79757461690001, "audit_log": 0x6E79757461690002}
APPEND_ATTEMPTS = 5


class ChainAppendError(RuntimeError):
    """The next chain position could not be taken (another writer bypassed the lock)."""


def _lock(session: Session, table: str) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text(f"UPDATE {table} SET seq = seq WHERE id = -1"))  # rowid: no scan
    elif dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEYS[table]})


def chain_head(
    session: Session, model: type[Event] | type[AuditLog], controller: str | None = None
) -> tuple[int, str]:
    """(seq, hash) of the newest chained row; after a purge of everything, the tombstone's.
    Events: the chain of ``controller`` (the default controller's when None)."""
    from db.chain import chain_log, chain_where

    log_name = "audit" if model is AuditLog else chain_log(controller or DEFAULT_CONTROLLER_ID)
    row = session.execute(
        select(model.seq, model.hash)
        .where(model.seq.is_not(None), *chain_where(log_name))
        .order_by(model.seq.desc())
        .limit(1)
    ).first()
    if row is not None:
        return int(row[0] or 0), str(row[1])
    from db.models import DeletionRecord

    tomb = session.execute(
        select(DeletionRecord.to_seq, DeletionRecord.last_hash)
        .where(DeletionRecord.log == log_name)
        .order_by(DeletionRecord.to_seq.desc())
        .limit(1)
    ).first()
    if tomb is not None:
        return int(tomb[0]), str(tomb[1])
    return 0, GENESIS


def _fill_defaults(row: Event | AuditLog) -> None:
    # Column defaults are applied at INSERT, after hashing; apply scalar ones now so the
    # hashed value is the stored value (e.g. Event.visitor=False).
    for col in row.__table__.columns:
        default = col.default
        if default is not None and default.is_scalar and getattr(row, col.key) is None:
            setattr(row, col.key, default.arg)


def _append(session: Session, row: Event | AuditLog) -> None:
    model = type(row)
    table = model.__tablename__
    canon = canonical_event if isinstance(row, Event) else canonical_audit
    _fill_defaults(row)
    _lock(session, table)
    controller = getattr(row, "controller", None) if isinstance(row, Event) else None
    for attempt in range(1, APPEND_ATTEMPTS + 1):
        seq, prev = chain_head(session, model, controller)
        row.seq = seq + 1
        row.prev_hash = prev
        row.hash = chain_hash(prev, canon(row))  # type: ignore[arg-type]
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return
        except IntegrityError as exc:
            if "seq" not in str(exc.orig):
                raise
            log.warning("%s seq %d taken by another writer, retrying (%d)", table, seq + 1, attempt)
    raise ChainAppendError(f"could not append to {table} after {APPEND_ATTEMPTS} attempts")


def append_event(session: Session, event: Event) -> Event:
    """Add ``event`` to the chain (flushes; the caller commits)."""
    _append(session, event)
    return event


def append_audit(session: Session, row: AuditLog) -> AuditLog:
    """Add an audit row to its chain (flushes; the caller commits)."""
    _append(session, row)
    return row
