"""Verification of the hash-chained logs, their signed checkpoints and purge tombstones.

``verify_log`` walks a log in ``seq`` order and names the first row that was altered,
inserted, deleted or reordered (and up to ``max_findings`` more, resynchronising after each).
Classification of a broken link between the previous row P and the current row R:

- R.seq skips numbers                               -> rows deleted (a gap)
- R's stored hash does not match its content        -> R altered
- R points to a row that comes later in seq order   -> R reordered (positions swapped)
- R points further back, after a reported move      -> R reordered (the other half)
- R's link broke only because a moved row precedes  -> not repeated
- the row after R still points to P                 -> R inserted
- R points to the row before P                      -> P inserted
- otherwise                                         -> P altered with a recomputed hash

A hash chain alone cannot show rows cut from its end, nor a chain rewritten from some row on
with fresh hashes: signed checkpoints catch both up to the latest checkpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from db.chain import (
    GENESIS,
    canonical_deletion,
    canonical_values,
    chain_hash,
    chain_log,
    chain_where,
    log_controller,
    log_fields,
    log_model,
    normalizers,
    raw_hasher,
)
from db.checkpoints import checkpoint_valid, signature_ok
from db.models import Checkpoint, DeletionRecord

# progress(log, rows done, rows to check): a display for a terminal, never needed
Progress = Callable[[str, int, int], None]
# a Core row (id, seq, prev_hash, hash, *fields), read by index in the hot loop
_Row = Any
BATCH = 5000  # rows fetched per round trip while walking a chain
_CURSORS = itertools.count(1)  # names of PostgreSQL server-side cursors, unique per process


class _DriverRow(tuple[Any, ...]):
    """A driver's row ``(id, seq, prev_hash, hash, *fields)`` with the names the walk's rare
    paths read (a SQLAlchemy Row per row cost more than the read itself)."""

    __slots__ = ()

    @property
    def id(self) -> Any:
        return self[0]

    @property
    def seq(self) -> Any:
        return self[1]

    @property
    def prev_hash(self) -> Any:
        return self[2]

    @property
    def hash(self) -> Any:
        return self[3]


def _driver_rows(conn: Connection, stmt: Select[Any]) -> Iterator[_DriverRow] | None:
    """``stmt``'s rows straight from the DBAPI cursor of the session's connection (inside its
    transaction), ``BATCH`` at a time: a PostgreSQL server-side cursor (constant memory) or
    an SQLite cursor. None when a bound value would need SQLAlchemy's processing (the caller
    then executes ``stmt`` itself): only plain values are handed to the driver here."""
    dialect = conn.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        return None
    compiled = stmt.compile(dialect=dialect)
    if any(b.type.bind_processor(dialect) is not None for b in compiled.binds.values()):
        return None
    params = compiled.construct_params()
    dbapi: Any = conn.connection.driver_connection
    if dialect.name == "postgresql":
        cur = dbapi.cursor(name=f"nyutai_verify_{next(_CURSORS)}")
        args: Any = params  # psycopg: named (pyformat) parameters
    else:
        cur = dbapi.cursor()
        args = tuple(params[k] for k in compiled.positiontup or ())

    def rows() -> Iterator[_DriverRow]:
        try:
            cur.execute(str(compiled), args)
            while batch := cur.fetchmany(BATCH):
                yield from map(_DriverRow, batch)
        finally:
            cur.close()

    return rows()


ALTERED = "altered"
INSERTED = "inserted"
DELETED = "deleted"
REORDERED = "reordered"
BAD_CHECKPOINT = "bad_checkpoint"
BAD_TOMBSTONE = "bad_tombstone"


@dataclass(frozen=True)
class Finding:
    log: str
    kind: str
    seq: int | None
    row_id: int | None
    message: str

    @property
    def controller(self) -> str | None:
        """The controller whose events chain this is (None: the audit log)."""
        return log_controller(self.log)

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "no seq"
        rid = f" (id {self.row_id})" if self.row_id is not None else ""
        who = f" (controller {self.controller})" if self.controller is not None else ""
        return f"{self.log}{who}: {self.kind} at {where}{rid}: {self.message}"


@dataclass
class LogResult:
    log: str
    rows_checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str | None = None
    checkpoints_checked: int = 0
    tombstones_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=lambda f: (f.seq is None, f.seq or 0), default=None)


@dataclass
class VerifyResult:
    logs: list[LogResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.logs)

    @property
    def first(self) -> Finding | None:
        firsts = [r.first for r in self.logs if r.first is not None]
        return firsts[0] if firsts else None


class _Walker:
    """Walks one log's rows and records findings."""

    def __init__(self, session: Session, log: str, result: LogResult, max_findings: int) -> None:
        self.session = session
        self.log = log
        self.model = log_model(log)
        self.fields = log_fields(log)
        self.where = chain_where(log)  # one controller's chain of the events table
        self.norms = normalizers(self.model, self.fields)
        dialect = session.get_bind().dialect.name
        # the fast path: the driver's values, no SQLAlchemy result types, a precomputed list
        # of the few fields that need converting (times, booleans, JSON text)
        self.hasher = raw_hasher(self.model, self.fields, dialect)
        self.raw = self.hasher is not None
        self.progress: Callable[[int], None] | None = None
        self.result = result
        self.max_findings = max_findings
        self.start_seq, self.start_prev = 1, GENESIS

    def add(self, kind: str, seq: int | None, row_id: int | None, message: str) -> None:
        if len(self.result.findings) < self.max_findings:
            self.result.findings.append(Finding(self.log, kind, seq, row_id, message))

    def rows(self, start_seq: int) -> Iterator[_Row]:
        """Plain Core rows in seq order, fetched in batches: no ORM object per row."""
        m = self.model
        cols: list[Any] = [getattr(m, f) for f in self.fields]
        if self.raw:  # the driver's native values: no result processing per value
            cols = [type_coerce(c, NullType()) for c in cols]
        # labelled apart from id/seq/prev_hash/hash, which ``seq`` would make ambiguous
        cols = [c.label(f"f_{f}") for c, f in zip(cols, self.fields, strict=True)]
        stmt = (
            select(m.id, m.seq, m.prev_hash, m.hash, *cols)
            .where(m.seq >= start_seq, *self.where)
            .order_by(m.seq)
            .execution_options(yield_per=BATCH)
        )
        conn = self.session.connection()
        if self.raw:
            driver = _driver_rows(conn, stmt)
            if driver is not None:
                yield from driver
                return
        # Core on the session's connection: no ORM result machinery per row; whole batches
        for batch in conn.execute(stmt).partitions():
            yield from batch

    def row_hash(self, row: _Row) -> str:
        """The hash the row should carry (db.chain's canonical form, built from the tuple)."""
        if self.raw and self.hasher is not None:
            return self.hasher(row[2] or "", row[4:])
        return chain_hash(row[2] or "", canonical_values(self.fields, self.norms, row[4:]))

    def seq_of_hash(self, hash_: str | None) -> int | None:
        if hash_ is None:
            return None
        return self.session.scalar(
            select(self.model.seq).where(self.model.hash == hash_, *self.where).limit(1)
        )

    def walk(self, start_seq: int, start_prev: str, wanted: set[int]) -> dict[int, str]:
        """Check rows from ``start_seq``; return the stored hashes of the ``wanted`` seqs."""
        seen: dict[int, str] = {}
        self.start_seq, self.start_prev = start_seq, start_prev
        expected, prev_hash = start_seq, start_prev
        prev: _Row | None = None
        prevprev_hash: str | None = None
        it = self.rows(start_seq)
        cur = next(it, None)
        r = self.result
        row_hash, progress, add = self.row_hash, self.progress, self.add
        hasher = self.hasher if self.raw else None
        n = 0
        if cur is not None and r.first_seq is None:
            r.first_seq = int(cur.seq)
        # the hot loop (millions of rows): locals, index access, the common case first
        while cur is not None:
            nxt = next(it, None)
            n += 1
            if progress is not None and not n % BATCH:
                progress(r.rows_checked + n)
            seq, stored = cur[1], cur[3]
            if seq in wanted:
                seen[seq] = str(stored)
            if hasher is not None:
                content_ok = hasher(cur[2] or "", cur[4:]) == stored
            else:
                content_ok = row_hash(cur) == stored
            if seq == expected and cur[2] == prev_hash and content_ok:
                pass  # an intact link: nothing to record
            elif seq != expected:
                add(
                    DELETED, expected, None, f"rows seq {expected}..{seq - 1} are missing (deleted)"
                )
                if not content_ok:
                    add(ALTERED, seq, cur.id, "the row's content does not match its hash")
            elif cur.prev_hash != prev_hash:
                self._broken_link(prev, cur, nxt, prevprev_hash, content_ok)
            elif nxt is not None and prev is not None and nxt.prev_hash == prev.hash:
                msg = "this row is not in the chain: the next row links past it"
                add(INSERTED, seq, cur.id, msg)
            else:
                add(ALTERED, seq, cur.id, "the row's content does not match its hash")
            prevprev_hash = prev[3] if prev is not None else None
            prev, prev_hash, expected = cur, str(stored), seq + 1
            cur = nxt
        r.rows_checked += n
        if prev is not None:
            r.last_seq, r.head_hash = int(prev.seq), prev.hash
        return seen

    def _broken_link(
        self,
        prev: _Row | None,
        cur: _Row,
        nxt: _Row | None,
        prevprev_hash: str | None,
        content_ok: bool,
    ) -> None:
        seq = int(cur.seq)
        linked = self.seq_of_hash(cur.prev_hash)
        if linked is None and cur.prev_hash == self.start_prev:
            linked = self.start_seq - 1  # links to the chain's start (genesis or tombstone)
        moved = {f.seq for f in self.result.findings if f.kind == REORDERED}
        if linked is not None and linked > seq and prev is not None and prev.seq in moved:
            return  # the row before this one was moved here: a consequence, not a new finding
        if linked is not None and linked > seq:
            self.add(
                REORDERED,
                seq,
                cur.id,
                f"this row follows seq {linked} in the chain: rows were moved",
            )
            return
        if linked is not None and linked in moved:
            return  # links to a row already reported as moved: a consequence, not a new finding
        if linked is not None and linked < seq - 1 and moved:
            # the other half of a move: this row belongs further up, after seq {linked}
            self.add(
                REORDERED,
                seq,
                cur.id,
                f"this row follows seq {linked} in the chain: rows were moved",
            )
            return
        if nxt is not None and prev is not None and nxt.prev_hash == prev.hash:
            msg = "this row is not in the chain: the next row links past it"
            self.add(INSERTED, seq, cur.id, msg)
            return
        if prev is not None and prevprev_hash is not None and cur.prev_hash == prevprev_hash:
            self.add(
                INSERTED,
                prev.seq,
                prev.id,
                "this row is not in the chain: the next row links past it",
            )
            return
        if not content_ok:
            self.add(ALTERED, seq, cur.id, "the row's content does not match its hash")
            return
        if prev is None:
            self.add(ALTERED, seq, cur.id, "the first row does not link to the chain's start")
            return
        self.add(
            ALTERED,
            prev.seq,
            prev.id,
            f"this row was altered and its hash recomputed: seq {seq} still links to the original",
        )


def verify_log(
    session: Session,
    log: str,
    trusted_keys: set[str] | None,
    *,
    since: datetime | None = None,
    max_findings: int = 20,
    progress: Progress | None = None,
) -> LogResult:
    """Check one log ("audit", or a controller's events chain: "events", "events@ID");
    ``trusted_keys`` None skips signature checks.
    ``progress(log, rows_done, rows_total)`` is called every few thousand rows."""
    model = log_model(log)
    mine = chain_where(log)
    result = LogResult(log)
    w = _Walker(session, log, result, max_findings)
    if trusted_keys is None:
        result.warnings.append("no trusted public key: signatures were not checked")

    # 1. tombstones: contiguous from seq 1, each signed; the chain resumes after the last
    start_seq, start_prev = 1, GENESIS
    tombs = session.scalars(
        select(DeletionRecord).where(DeletionRecord.log == log).order_by(DeletionRecord.from_seq)
    ).all()
    for t in tombs:
        result.tombstones_checked += 1
        if t.from_seq != start_seq:
            w.add(
                BAD_TOMBSTONE,
                t.from_seq,
                None,
                f"deletion record {t.id} starts at seq {t.from_seq}, expected {start_seq}",
            )
        if trusted_keys is not None and not any(
            signature_ok(k, t.signature or b"", canonical_deletion(t)) for k in trusted_keys
        ):
            w.add(
                BAD_TOMBSTONE,
                t.from_seq,
                None,
                f"deletion record {t.id} (seq {t.from_seq}..{t.to_seq}) has no valid signature",
            )
        start_seq, start_prev = t.to_seq + 1, t.last_hash
    if tombs:
        left = session.scalar(
            select(func.count()).select_from(model).where(model.seq < start_seq, *mine)
        )
        if left:
            w.add(INSERTED, None, None, f"{left} rows lie inside a purged range")

    # 2. rows outside the chain (written without append_*)
    unchained = select(model.id).where(model.seq.is_(None), *mine).limit(max_findings)
    for rid in session.scalars(unchained):
        w.add(INSERTED, None, rid, "this row has no sequence number: it was not appended")

    # 3. checkpoints
    cps = session.scalars(
        select(Checkpoint).where(Checkpoint.log == log).order_by(Checkpoint.seq)
    ).all()
    good_cps = []
    for cp in cps:
        result.checkpoints_checked += 1
        if trusted_keys is not None and not checkpoint_valid(cp, trusted_keys):
            w.add(BAD_CHECKPOINT, cp.seq, None, f"checkpoint {cp.id} has no valid signature")
        else:
            good_cps.append(cp)

    # --from DATE: resume from the last good checkpoint made before DATE, if any
    if since is not None:
        anchors = [c for c in good_cps if c.created_at <= since and c.seq >= start_seq]
        if anchors:
            a = max(anchors, key=lambda c: c.seq)
            stored = session.scalar(select(model.hash).where(model.seq == a.seq, *mine))
            if stored != a.hash:
                w.add(ALTERED, a.seq, None, f"the row differs from signed checkpoint {a.id}")
            start_seq, start_prev = a.seq + 1, a.hash

    wanted = {c.seq for c in good_cps if c.seq >= start_seq}
    if progress is not None:
        top = session.scalar(select(func.max(model.seq)).where(*mine)) or 0
        total = max(0, top - start_seq + 1)
        progress(log, 0, total)
        w.progress = lambda n: progress(log, n, total)
    seen = w.walk(start_seq, start_prev, wanted)

    for cp in good_cps:
        if cp.seq < start_seq:
            if tombs and cp.seq == tombs[-1].to_seq and cp.hash != tombs[-1].last_hash:
                w.add(BAD_TOMBSTONE, cp.seq, None, f"tombstone disagrees with checkpoint {cp.id}")
            continue
        if result.last_seq is None or cp.seq > result.last_seq:
            first_missing = (result.last_seq or start_seq - 1) + 1
            w.add(
                DELETED,
                first_missing,
                None,
                f"rows seq {first_missing}..{cp.seq} are missing: checkpoint {cp.id} "
                f"({cp.created_at:%Y-%m-%d %H:%M} UTC) signed seq {cp.seq}",
            )
        elif cp.seq in seen and seen[cp.seq] != cp.hash:
            w.add(
                ALTERED,
                cp.seq,
                None,
                f"the row's hash differs from signed checkpoint {cp.id}: the chain was rewritten",
            )
    if progress is not None:
        progress(log, result.rows_checked, result.rows_checked)
    return result


def verify_all(
    session: Session,
    trusted_keys: set[str] | None,
    *,
    since: datetime | None = None,
    max_findings: int = 20,
    progress: Progress | None = None,
) -> VerifyResult:
    """Every controller's events chain (the default controller's first), then the audit log."""
    from db.controllers import event_chains

    names = [chain_log(c) for c in event_chains(session, scan=True)] + ["audit"]
    return VerifyResult(
        [
            verify_log(
                session,
                name,
                trusted_keys,
                since=since,
                max_findings=max_findings,
                progress=progress,
            )
            for name in names
        ]
    )
