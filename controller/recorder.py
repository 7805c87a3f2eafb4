"""The evidence recorder: one writer thread, group commit, a durable journal when the DB is away.

The door thread builds a ``Work`` (chained event rows plus declarative operations: alarms,
presence, PIN counters, device status, command results) and submits it with a callback. The
writer thread takes every work submitted while its previous commit was in flight and writes
them in **one** transaction; only after that commit returned does it post each callback
(release the strike, beep) back to the door thread. No released strike without a committed
row; one fsync for many presentations.

The chain head lives here, in memory: the controller is the one writer of the events chain.
``submit`` gives each event its ``seq``, ``prev_hash`` and ``hash`` under a lock, in
submission order, so the order of the chain is the order of the queue. Event ids are
allocated from memory too (``new_id``) so the door thread can link rows (alarm -> event,
escort -> event) before anything is written. The unique ``seq`` column still refuses a
second writer.

When the database cannot be written (locked past the busy timeout, connection refused), the
recorder switches to the **journal** (controller.journal): each work is appended and
fsynced there, then its callback runs, so doors keep working from memory. Every
``RETRY_SECONDS`` it tries to write the journal to the database, in order, each work at most
once: a work whose first ``seq`` is already in the table was written before a crash and is
skipped (``seq`` is the idempotency key). A ``database_unavailable`` alarm is raised (in the
journal, with the outage's start time) and restored when the journal is written.

A commit that neither returns nor fails (a PostgreSQL primary waiting for a synchronous
standby that is down, a server that stopped answering mid-commit) counts as an outage too:
the database work runs on its own thread, and after ``COMMIT_PATIENCE_SECONDS`` the writer
journals the works and releases their strikes. Whether the hung commit lands later or not,
the journal's replay writes each work exactly once (the ``seq`` check above).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import Connection, Engine, Table, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from controller import alarms as alarm_rows
from controller.journal import WorkJournal
from controller.status import publish
from db import bulk, presence, wal
from db.chain import EVENT_FIELDS, dict_hasher
from db.eventlog import chain_head
from db.incidents import open_incident_for_alarm
from db.models import Command, Credential, CredentialState, Event
from db.models import Decision as D
from db.models import Presence as PresenceRow
from db.snapshots import store_snapshot
from db.types import utcnow
from domain.config import DEFAULT_CONTROLLER_ID
from domain.reasons import AlarmKind, Reason

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
ALARM_AFTER_SECONDS = 2.0  # a busy database for a moment is not an outage
MAX_BATCH = 2_000
# Back-pressure: the door thread runs at most this many works ahead of the writer, so a
# decided person waits for their commit about two batches at most; later inputs wait undecided
# in the controller's queue (and are decided from fresher memory when their turn comes). The
# wait is bounded: a commit that hangs slows the door thread to one work per wait until the
# patience below sends the writer to the journal.
AHEAD_WORKS = 24
AHEAD_WAIT_SECONDS = 0.05
# the longest a person at the door waits on a database that neither commits nor fails
COMMIT_PATIENCE_SECONDS = 2.0
# the writer's own PostgreSQL connection is pinged after resting this long (as the pool's are
# in controller.daemon): a server restarted or failed over at night costs no journal detour
CROSSINGS_PING_AFTER_SECONDS = 1.0
# PostgreSQL deadlock_detected and serialization_failure: another writer, not an outage
TRANSIENT_SQLSTATES = ("40P01", "40001")
TRANSIENT_ATTEMPTS = 3
EVENTS = cast(Table, Event.__table__)  # Core inserts: the ORM's bulk path costs more


EVENT_COLUMNS = tuple(c.key for c in EVENTS.columns)
_hash_event = dict_hasher(Event, EVENT_FIELDS)  # a row of every column -> its chain hash
# scalar column defaults, applied before hashing so the hashed value is the stored one
EVENT_DEFAULTS = {
    c.key: c.default.arg
    for c in Event.__table__.columns
    if c.default is not None and getattr(c.default, "is_scalar", False)
}


# --- operations: what a work does besides appending events ---------------------------------


class Op:
    """A declarative change written in the work's transaction. ``journal`` ops survive an
    outage in the journal (as JSON); the others are dropped there (and logged)."""

    journal: ClassVar[bool] = True
    name: ClassVar[str] = ""

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


OPS: dict[str, type[Op]] = {}


def _op(cls: type[Op]) -> type[Op]:
    cls.name = cls.__name__
    OPS[cls.name] = cls
    return cls


@_op
@dataclass
class RaiseAlarm(Op):
    kind: str
    at: datetime
    event_id: int
    door_id: int | None = None
    area_id: int | None = None
    reader: str | None = None
    person_id: int | None = None
    silent: bool = False
    detail: dict[str, Any] | None = None
    snapshot_event_id: int | None = None

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        alarm = alarm_rows.raise_alarm(
            s,
            AlarmKind(self.kind),
            self.at,
            door_id=self.door_id,
            area_id=self.area_id,
            reader=self.reader,
            person_id=self.person_id,
            event_id=self.event_id,
            silent=self.silent,
            detail=self.detail,
        )
        alarm.controller = ctx.get("controller")
        snap_id = ctx.get("snapshots", {}).get(self.snapshot_event_id)
        if snap_id is not None:
            alarm.snapshot_id = snap_id
        open_incident_for_alarm(s, alarm, [self.event_id], [snap_id] if snap_id else [])


@_op
@dataclass
class RestoreAlarm(Op):
    kind: str
    at: datetime
    door_id: int | None = None
    reader: str | None = None

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        alarm_rows.restore_open(
            s, AlarmKind(self.kind), self.at, door_id=self.door_id, reader=self.reader
        )


@_op
@dataclass
class PresenceEnter(Op):
    area_id: int
    person_id: int
    entered_at: datetime
    event_id: int | None
    escort_person_id: int | None = None
    visit_id: int | None = None

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        write_presence(s, [self])


@_op
@dataclass
class PresenceLeave(Op):
    person_id: int
    area_id: int | None  # None: every area (a guard's forgive)

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        q = delete(PresenceRow).where(PresenceRow.person_id == self.person_id)
        if self.area_id is not None:
            q = q.where(PresenceRow.area_id == self.area_id)
        s.execute(q)


def apply_ops(s: Session, ops: list[Op], ctx: dict[str, Any]) -> None:
    """Apply a batch's operations in order, the presence ones as a set (few statements for
    a whole batch, whatever its size: several controllers write presence at once)."""
    presence = [op for op in ops if isinstance(op, PresenceEnter | PresenceLeave)]
    for op in ops:
        if not isinstance(op, PresenceEnter | PresenceLeave):
            op.apply(s, ctx)
    if presence:
        write_presence(s, presence)


def write_presence(s: Session, ops: list[PresenceEnter | PresenceLeave]) -> None:
    """The final presence of every (person, area) the ops touch, in their order, written as
    a set (db.presence: another controller may write the same rows meanwhile)."""
    presence.write(s, *final_presence(ops))


def final_presence(
    ops: list[PresenceEnter | PresenceLeave],
) -> tuple[dict[tuple[int, int], dict[str, Any] | None], set[int]]:
    """Each (person, area) the ops touch with its row after the last of them (None: not
    inside), and the people a forgive took out of every area."""
    final: dict[tuple[int, int], dict[str, Any] | None] = {}
    wipe: set[int] = set()  # people leaving every area (a guard's forgive)
    for op in ops:
        if isinstance(op, PresenceEnter):
            final[(op.person_id, op.area_id)] = {
                "person_id": op.person_id,
                "area_id": op.area_id,
                "entered_at": op.entered_at,
                "event_id": op.event_id,
                "escort_person_id": op.escort_person_id,
                "visit_id": op.visit_id,
            }
        elif op.area_id is not None:
            final[(op.person_id, op.area_id)] = None
        else:
            wipe.add(op.person_id)
            for key in [k for k in final if k[0] == op.person_id]:
                final[key] = None
    return final, wipe


@_op
@dataclass
class PinCount(Op):
    """The credential's consecutive wrong PINs; ``lock`` also locks the card."""

    credential_id: int
    count: int
    lock: bool = False

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        row = s.get(Credential, self.credential_id)
        if row is None:
            return
        row.failed_pin_count = self.count
        if self.lock:
            row.state = CredentialState.LOCKED
        s.flush()


@_op
@dataclass
class Status(Op):
    kind: str
    key: str
    state: str
    at: datetime
    detail: dict[str, Any] | None = None
    last_card: str | None = None

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        publish(s, self.kind, self.key, self.state, self.at, detail=self.detail,
                last_card=self.last_card, controller=ctx.get("controller"))  # fmt: skip
        s.flush()


@_op
@dataclass
class FinishCommand(Op):
    """Mark a command done in the same transaction as its effect: exactly once."""

    command_id: int
    state: str
    result: dict[str, Any] | None
    at: datetime

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        s.execute(
            update(Command)
            .where(Command.id == self.command_id)
            .values(state=self.state, result=self.result, processed_at=self.at)
        )


@_op
@dataclass
class MaskKeys(Op):
    """No PIN at rest: a keys command keeps only how many keys were typed."""

    command_id: int
    length: int

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        cmd = s.get(Command, self.command_id)
        if cmd is not None:
            cmd.payload = {**(cmd.payload or {}), "keys": "*" * self.length}


@_op
@dataclass
class StoreSnapshot(Op):
    journal: ClassVar[bool] = False
    data_dir: Path
    camera: str
    jpeg: bytes
    taken_at: datetime
    event_id: int
    width: int | None = None
    height: int | None = None
    subdir: str = "snapshots"  # [controller] snapshot_dir: the folder the web serves

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        snap = store_snapshot(
            s, self.data_dir, self.camera, self.jpeg, self.taken_at,
            width=self.width, height=self.height, subdir=self.subdir,
        )  # fmt: skip
        s.execute(update(Event).where(Event.id == self.event_id).values(snapshot_id=snap.id))
        ctx.setdefault("snapshots", {})[self.event_id] = snap.id


@_op
@dataclass
class Fn(Op):
    """Anything else (alarm acknowledgements from commands): not kept across an outage."""

    journal: ClassVar[bool] = False
    fn: Callable[[Session], None]

    def apply(self, s: Session, ctx: dict[str, Any]) -> None:
        self.fn(s)


# --- works --------------------------------------------------------------------------------


@dataclass
class Draft:
    """An event row being built; ``id`` is known at once, the chain fields at submit."""

    id: int
    fields: dict[str, Any]


@dataclass
class Work:
    events: list[Draft] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    on_done: Callable[[], None] | None = None
    queued_at: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)  # chained, at submit


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _op_json(op: Op) -> dict[str, Any]:
    data = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}  # type: ignore[arg-type]
    return {"op": op.name, **{k: (v.isoformat() if isinstance(v, datetime) else v)
                              for k, v in data.items()}}  # fmt: skip


def _op_from_json(d: dict[str, Any]) -> Op:
    cls = OPS[d["op"]]
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        v = d.get(f.name)
        if f.name in ("at", "entered_at", "taken_at") and isinstance(v, str):
            v = datetime.fromisoformat(v)
        kwargs[f.name] = v
    return cls(**kwargs)


DRAIN_WAIT_MS = 10


@contextlib.contextmanager
def _short_wait(s: Session) -> Iterator[None]:
    """While journalling, each try to write the journal back waits for a locked SQLite file
    only ``DRAIN_WAIT_MS``, not the busy timeout: the presentations queued meanwhile (their
    strikes) wait for the try to give up."""
    conn = s.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    raw: Any = conn.connection.dbapi_connection  # the driver's own: works after any error
    before = int(raw.execute("PRAGMA busy_timeout").fetchone()[0] or 0)
    raw.execute(f"PRAGMA busy_timeout={DRAIN_WAIT_MS}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout={before}")


_INSERTS: dict[int, tuple[str, str, list[tuple[str, Any]]]] = {}
ROWS_PER_INSERT = 100  # x 25 columns: far below SQLite's variable limit


def _insert_events(s: Session, rows: list[dict[str, Any]]) -> None:
    """The events in few statements. On SQLite (qmark parameters) each statement is one
    multi-row ``INSERT ... VALUES (...), (...)`` of up to ROWS_PER_INSERT rows, the values
    passed through the column types' own bind processors (what SQLAlchemy would send, without
    its per-row machinery). One statement is one step of the SQLite engine: the writer gives up
    the GIL once per statement, where an executemany gives it up after every row and then
    waits up to the switch interval for the door thread to hand it back. On PostgreSQL the
    batch is one ``COPY`` (db.bulk)."""
    conn = s.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        bulk.copy(conn, EVENTS, rows)
        return
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        conn.execute(EVENTS.insert(), rows)
        return
    plan = _INSERTS.get(id(dialect))
    if plan is None:
        compiled = EVENTS.insert().compile(dialect=dialect, column_keys=list(EVENT_COLUMNS))
        procs = compiled._bind_processors  # noqa: SLF001 - the types' own processors
        positions = compiled.positiontup or []
        head, _, one = compiled.string.rpartition(" VALUES ")
        plan = (head + " VALUES ", one, [(k, procs.get(k)) for k in positions])
        _INSERTS[id(dialect)] = plan
    head, one, columns = plan
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        params: list[Any] = []
        for r in chunk:
            params.extend(p(r[k]) if p is not None else r[k] for k, p in columns)
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(params))


class CommitHung(Exception):
    """The database neither committed nor failed within the patience."""


class Recorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        journal_path: Path,
        post: Callable[[Callable[[], None]], None],
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.journal = WorkJournal(journal_path)
        self.post = post
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Work] = deque()
        self._busy = False
        self._next_id = 1
        self._seq = 0
        self._hash = ""
        self._stop = False
        self._thread: threading.Thread | None = None
        self.offline_since: float | None = None  # monotonic; set while journalling
        self._offline_wall: datetime | None = None
        self._alarm_event: int | None = None
        self._last_try = 0.0
        self.alarm_after = ALARM_AFTER_SECONDS
        self.commit_patience = COMMIT_PATIENCE_SECONDS
        # database work runs here, so a commit that hangs holds no door (see the module doc)
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recorder-db")
        self._hung: concurrent.futures.Future[None] | None = None
        # several controllers on one database (db.controllers): this one's chain and id range
        self.controller_id = DEFAULT_CONTROLLER_ID
        self.id_range = (0, 1 << 62)
        # SQLite: the WAL is copied into the database file beside the writer (db.wal)
        self.checkpointer: wal.WalCheckpointer | None = None
        # PostgreSQL: the database thread's own connection for batches of crossings
        self._crossings: Connection | None = None
        self._crossings_used = 0.0
        self.commit_seconds: deque[float] = deque(maxlen=10_000)  # queue-to-commit, for bench
        self.batch_sizes: deque[int] = deque(maxlen=10_000)

    # --- start: the chain head, then whatever the journal kept ----------------------------

    def load_head(self) -> None:
        """Read the chain head and the next event id (one indexed lookup each)."""
        low, high = self.id_range
        with self.sessions() as s:
            seq, head = chain_head(s, Event, self.controller_id)
            top = s.scalar(
                select(func.max(Event.id)).where(Event.id >= low, Event.id < high)
            ) or max(low, 0)
        pending = self.journal.works()
        for w in pending:
            for row in w["events"]:
                if row["seq"] > seq:
                    seq, head = row["seq"], row["hash"]
                top = max(top, row["id"])
        self._seq, self._hash, self._next_id = seq, head, int(top) + 1
        if pending:
            self.offline_since = self.monotonic()
            self._offline_wall = self.clock()
            log.warning(
                "%d works kept in the journal from before: writing them first", len(pending)
            )

    def start(self) -> None:
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
            self.checkpointer = wal.WalCheckpointer(bind)
            self.checkpointer.start()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (to the DB or the journal), then stop."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(RuntimeError):  # stopped before
            self._db.submit(self._drop_crossings)  # its thread's: after any commit running
        self._db.shutdown(wait=False)
        if self.checkpointer is not None:
            self.checkpointer.stop()

    # --- door thread --------------------------------------------------------------------

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    def new_id(self) -> int:
        with self._lock:
            i = self._next_id
            self._next_id += 1
            return i

    def draft(self, work: Work, **fields: Any) -> Draft:
        fields.setdefault("occurred_at", self.clock())
        d = Draft(self.new_id(), fields)
        work.events.append(d)
        return d

    def submit(self, work: Work, on_done: Callable[[], None] | None = None) -> None:
        """Chain the work's events (in submission order) and queue it for the writer."""
        work.on_done = on_done
        work.queued_at = self.monotonic()
        with self._cond:
            for d in work.events:
                given = {**EVENT_DEFAULTS, **{k: v for k, v in d.fields.items() if v is not None}}
                row: dict[str, Any] = {c: given.get(c) for c in EVENT_COLUMNS}
                seq, prev = self._seq + 1, self._hash
                row.update(id=d.id, controller=self.controller_id, seq=seq, prev_hash=prev)
                row["hash"] = self._hash = _hash_event(prev, row)
                self._seq = seq
                work.rows.append(row)
            self._queue.append(work)
            self._cond.notify()
            if (
                len(self._queue) >= AHEAD_WORKS
                and self.offline_since is None
                and threading.current_thread() is not self._thread  # the writer's own works
            ):
                self._cond.wait_for(self._room, AHEAD_WAIT_SECONDS)

    def _room(self) -> bool:
        return len(self._queue) < AHEAD_WORKS or self.offline_since is not None or self._stop

    def idle(self) -> bool:
        with self._lock:
            return not self._queue and not self._busy

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True

    # --- writer thread ------------------------------------------------------------------

    def _take(self) -> list[Work]:
        with self._cond:
            if not self._queue and not self._stop:
                self._cond.wait(RETRY_SECONDS / 2)
            works: list[Work] = []
            while self._queue and len(works) < MAX_BATCH:
                works.append(self._queue.popleft())
            if works:
                self._cond.notify_all()  # the door thread may wait for room (AHEAD_WORKS)
            self._busy = bool(works)
            return works

    def _run(self) -> None:
        while True:
            works = self._take()
            try:
                if self.offline:
                    self._offline_round(works)
                elif works:
                    self._write(works)
            except Exception:
                log.exception("recorder round failed")
            finally:
                with self._lock:
                    self._busy = False
                    done = self._stop and not self._queue
            if done:
                return

    def _done(self, works: list[Work]) -> None:
        now = self.monotonic()
        for w in works:
            self.commit_seconds.append(now - w.queued_at)
            if w.on_done is not None:
                self.post(w.on_done)
        self.batch_sizes.append(len(works))

    def _in_db_thread(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the database thread; a hang past the patience is an outage."""
        future = self._db.submit(fn)
        try:
            future.result(timeout=self.commit_patience)
        except concurrent.futures.TimeoutError:
            self._hung = future
            raise CommitHung from None

    def _db_free(self) -> bool:
        if self._hung is None:
            return True
        if not self._hung.done():
            return False
        if self._hung.exception() is None:
            log.warning(
                "the database finished a commit that had hung; the journal's replay skips it"
            )
        self._hung = None
        return True

    def _write(self, works: list[Work]) -> None:
        try:
            self._in_db_thread(lambda: self._commit_retrying(works))
        except CommitHung:
            log.warning(
                "database commit hung for %.1f s: journalling (database_unavailable)",
                self.commit_patience,
            )
            self._go_offline(works)
            return
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, IntegrityError):
                self._integrity(works, exc)
                return
            log.warning("database cannot be written (%s): journalling", exc.__class__.__name__)
            self._go_offline(works)
            return
        self._done(works)
        if self.checkpointer is not None and self.checkpointer.reset_due:
            self._catch_up(self.checkpointer)

    def _catch_up(self, checkpointer: wal.WalCheckpointer) -> None:
        """The WAL's last frames, between two commits (db.wal); the strikes of the batch
        before were released already."""

        def run() -> None:
            with self.sessions() as s:
                checkpointer.catch_up(s.connection())

        try:
            self._in_db_thread(run)
        except Exception as exc:  # the next commit is what matters; it reports the database
            log.warning("WAL catch-up failed (%s)", exc.__class__.__name__)

    def _go_offline(self, works: list[Work]) -> None:
        self.offline_since = self.monotonic()
        self._offline_wall = self.clock()
        self._last_try = self.monotonic()
        self._to_journal(works)

    def _commit_retrying(self, works: list[Work]) -> None:
        """Commit; a deadlock or serialization failure with another writer (several
        controllers on one PostgreSQL) is retried at once: it is no outage."""
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                self._commit(works)
                return
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in TRANSIENT_SQLSTATES or attempt == TRANSIENT_ATTEMPTS:
                    raise
                log.info("commit met another writer (%s): retrying (%d)", code, attempt)

    def _commit(self, works: list[Work]) -> None:
        rows = [r for w in works for r in w.rows]
        ops = [op for w in works for op in w.ops]
        moves = [op for op in ops if isinstance(op, PresenceEnter | PresenceLeave)]
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and moves == ops:
            # a batch of crossings, the common one: one statement on its own (autocommit is
            # that statement's transaction), one round trip (db.presence)
            final, wipe = final_presence(moves)
            conn = self._crossings_connection(bind)
            try:
                presence.write_postgresql(conn, final, wipe, self.controller_id, rows)
            except BaseException:
                self._drop_crossings()  # whatever it was, the next batch starts afresh
                raise
            return
        with self.sessions() as s:
            s.info["controller"] = self.controller_id  # the change feed's origin
            if self.checkpointer is not None:
                wal.quiet_writer(s.connection())
            if rows:
                _insert_events(s, rows)
            ctx: dict[str, Any] = {"controller": self.controller_id}
            apply_ops(s, ops, ctx)
            s.commit()
        if self.checkpointer is not None:
            self.checkpointer.kick()

    def _crossings_connection(self, bind: Engine) -> Connection:
        """The writer's own PostgreSQL connection for batches of crossings: in autocommit,
        kept between commits (no pool checkout and return per commit), and planning the
        batch statement once. PostgreSQL re-planned it at every execution (custom plans:
        about 0.3 ms of the server's CPU per commit); ``plan_cache_mode`` is set on this
        connection only, which never goes back to the pool with it (``_drop_crossings``).
        After a rest it is pinged first, as the pool pings a rested connection."""
        conn, now = self._crossings, time.monotonic()
        if conn is not None and now - self._crossings_used > CROSSINGS_PING_AFTER_SECONDS:
            try:
                conn.exec_driver_sql("SELECT 1")
            except DBAPIError:
                self._drop_crossings()
                conn = None
        if conn is None:
            conn = bind.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            self._crossings = conn
        self._crossings_used = now
        return conn

    def _drop_crossings(self) -> None:
        """Close the writer's own connection for good (not back to the pool: its
        ``plan_cache_mode`` is for the batch statement only)."""
        conn, self._crossings = self._crossings, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection
                conn.invalidate()
                conn.close()

    def _integrity(self, works: list[Work], exc: IntegrityError) -> None:
        if "seq" in str(exc.orig) or "events" in str(exc.orig):
            # another writer took our chain positions: never release on an unwritten row
            log.critical(
                "events chain taken by another writer; rows kept in the journal (%s)",
                str(exc.orig).splitlines()[0] if exc.orig is not None else exc,
            )
            self._to_journal(works, run_callbacks=False)
            return
        # one bad operation must not lose the others: write the works one by one
        for w in works:
            try:
                self._commit([w])
            except IntegrityError:
                log.exception("a work's operations were refused; its events are kept")
                w.ops = []
                self._commit([w])
            self._done([w])

    def _to_journal(self, works: list[Work], *, run_callbacks: bool = True) -> None:
        if not works:
            return
        self.journal.append(
            [
                {
                    "events": [_row_json(r) for r in w.rows],
                    "ops": [_op_json(o) for o in w.ops if o.journal],
                }
                for w in works
            ]
        )
        dropped = sum(1 for w in works for o in w.ops if not o.journal)
        if dropped:
            log.warning("%d operations not kept across the outage (snapshots, acks)", dropped)
        if run_callbacks:
            self._done(works)

    def _offline_round(self, works: list[Work]) -> None:
        self._to_journal(works)
        now = self.monotonic()
        assert self.offline_since is not None
        if self._alarm_event is None and now - self.offline_since >= self.alarm_after:
            self._raise_unavailable()
        if now - self._last_try < RETRY_SECONDS:
            return
        self._last_try = now
        if not self._db_free():
            return  # the hung commit still holds the database thread (and its row locks)
        try:
            self._drain()
        except (OperationalError, DBAPIError, CommitHung):
            log.info("database still unavailable; %d bytes journalled", self.journal.size())

    def _raise_unavailable(self) -> None:
        # through the queue like any work: the chain's order stays the queue's order
        at = self._offline_wall or self.clock()
        w = Work()
        ev = self.draft(
            w, occurred_at=at, kind="system", decision=D.INFO, reason=Reason.DATABASE_UNAVAILABLE
        )
        self._alarm_event = ev.id
        w.ops.append(RaiseAlarm(AlarmKind.DATABASE_UNAVAILABLE.value, at, ev.id))
        self.submit(w)
        log.error("database unavailable: doors decide from memory")

    def _drain(self) -> None:
        """Write the journal to the database in order, each work at most once."""
        works = self.journal.works()
        # the writer thread waits (within the patience) while the database thread writes, so
        # no work is appended between reading the journal and clearing it
        self._in_db_thread(lambda: self._write_journalled(works))
        self.journal.clear()
        self._restored(works)

    def _write_journalled(self, works: list[dict[str, Any]]) -> None:
        for start in range(0, len(works), 500):
            chunk = works[start : start + 500]
            with self.sessions() as s, _short_wait(s):
                s.info["controller"] = self.controller_id
                seqs = [w["events"][0]["seq"] for w in chunk if w["events"]]
                mine = Event.controller == self.controller_id
                have = set(
                    s.scalars(select(Event.seq).where(mine, Event.seq.in_(seqs))) if seqs else []
                )
                rows: list[dict[str, Any]] = []
                ops: list[Op] = []
                for w in chunk:
                    if w["events"] and w["events"][0]["seq"] in have:
                        continue  # written before a crash: the seq is the idempotency key
                    for r in w["events"]:
                        r = dict(r)
                        r["occurred_at"] = datetime.fromisoformat(r["occurred_at"])
                        rows.append(r)
                    ops.extend(_op_from_json(o) for o in w["ops"])
                if rows:
                    _insert_events(s, rows)
                ctx: dict[str, Any] = {"controller": self.controller_id}
                apply_ops(s, ops, ctx)
                s.commit()

    def _restored(self, works: list[dict[str, Any]]) -> None:
        if works:
            log.warning("wrote %d works kept while the database was unavailable", len(works))
        raised = self._alarm_event is not None
        self.offline_since = None
        self._offline_wall = None
        self._alarm_event = None
        if raised:
            now = self.clock()
            back = Work()
            self.draft(
                back,
                occurred_at=now,
                kind="system",
                decision=D.INFO,
                reason=Reason.DATABASE_RESTORED,
            )
            back.ops.append(RestoreAlarm(AlarmKind.DATABASE_UNAVAILABLE.value, now))
            self.submit(back)
