"""SQLite WAL checkpoints off the writer's path.

SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages: that
commit copies the pages of the last ~70 event rows (one row touches ~15 pages across the events
table and its indexes) into the database file and fsyncs it. At 10M events that was the whole
p99 of a raw INSERT+COMMIT per row (4.3 ms beside 0.9 ms without it).

The controller's writer keeps only a far backstop (``BACKSTOP_FRAMES``) on its connection;
``WalCheckpointer`` copies the WAL on its own thread and connection instead (a PASSIVE checkpoint
runs beside a writer). SQLite starts the WAL over only when every frame has been copied and no
commit came in between, which a busy writer rarely leaves room for: so once the WAL has grown
past ``RESET_FRAMES`` and the thread has copied most of it, it asks the writer for one short pass
between two commits (``reset_due`` / ``catch_up``), and the writer's next commit restarts the
WAL. A long reader (an export) still holds the WAL back, as it would without this.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

# At most one pass per period. Each pass fsyncs the database file, and a commit whose WAL fsync
# meets it waits: at 0.1 s that was 2-5% of sequential taps (p99 6.1 ms against 3.3-4.3 ms
# at 0.5-1 s, 10M events). A longer period also copies a page changed by many commits once.
PERIOD_SECONDS = 1.0
RESET_FRAMES = 4_096  # 16 MiB of 4 KiB pages
BACKSTOP_FRAMES = 65_536  # SQLite's own checkpoint on the writer, should this thread stall
_QUIET_KEY = "nyutai_wal_backstop"


def quiet_writer(conn: Connection) -> None:
    """Leave checkpoints to the checkpointer on this (pooled) connection; once per connection."""
    if conn.info.get(_QUIET_KEY):
        return
    conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BACKSTOP_FRAMES}")
    conn.info[_QUIET_KEY] = True


def checkpoint(conn: Any) -> tuple[int, int]:
    """One PASSIVE checkpoint on a DBAPI or SQLAlchemy connection: (frames in the WAL, copied)."""
    run = conn.exec_driver_sql if isinstance(conn, Connection) else conn.execute
    row = run("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return (int(row[1]), int(row[2])) if row is not None else (0, 0)


class WalCheckpointer:
    def __init__(
        self,
        engine: Engine,
        *,
        period: float = PERIOD_SECONDS,
        reset_frames: int = RESET_FRAMES,
    ) -> None:
        self.engine = engine
        self.period = period
        self.reset_frames = reset_frames
        self.reset_due = False  # read by the writer after its commit
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def kick(self) -> None:
        """A commit added frames: copy them soon (within the period)."""
        self._wake.set()

    def catch_up(self, conn: Connection) -> None:
        """On the writer's thread, between two commits: copy the few frames committed since
        the last pass, so that the next commit starts the WAL over."""
        self.reset_due = False
        checkpoint(conn)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._pass()
            except Exception as exc:  # a locked or vanished file: the next commit tries again
                log.warning("WAL checkpoint failed (%s): the next commit retries", exc)
            self._stop.wait(self.period)

    def _pass(self) -> None:
        raw = self.engine.raw_connection()
        try:
            frames, copied = checkpoint(raw)
        finally:
            raw.close()
        self.passes += 1
        if frames >= self.reset_frames and frames - copied <= self.reset_frames // 4:
            self.reset_due = True
