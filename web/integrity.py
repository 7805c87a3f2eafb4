"""Recomputing the hash chains (section 9) to find the first altered, missing or moved row.

Rows are read in seq order in batches, so memory stays constant on millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.chain import (
    GENESIS,
    canonical_audit,
    canonical_event,
    chain_hash,
    chain_where,
    log_controller,
)
from db.models import AuditLog, Event

BATCH = 2000


@dataclass
class ChainResult:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str | None = None  # hash_mismatch / link_broken / seq_gap


def verify_chain(session: Session, log: str) -> ChainResult:
    events = log_controller(log) is not None  # "events" or "events@ID": one controller's
    model: Any = Event if events else AuditLog
    canon: Any = canonical_event if events else canonical_audit
    mine = chain_where(log)
    prev, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(model).where(model.seq > last_seq, *mine).order_by(model.seq).limit(BATCH)
        ).all()
        if not rows:
            return ChainResult(True, count)
        for row in rows:
            seq = int(row.seq or 0)
            if seq != expected_seq:
                return ChainResult(False, count, expected_seq, "seq_gap")
            if row.prev_hash != prev:
                return ChainResult(False, count, seq, "link_broken")
            if chain_hash(prev, canon(row)) != row.hash:
                return ChainResult(False, count, seq, "hash_mismatch")
            prev, expected_seq, count = str(row.hash), seq + 1, count + 1
        last_seq = int(rows[-1].seq or 0)
        session.expunge_all()
