"""The change-feed thread: keeps the controller's memory (controller.memory) current.

It reads the ``changes`` rows past the version it has applied, reads those rows again and
swaps in a new immutable Snapshot. PostgreSQL wakes it with ``LISTEN nyutai_changes``
(db.changes notifies in the writer's transaction); SQLite is polled every
``POLL_SECONDS``. Never the door thread: a slow or absent database delays only this.

Versions can commit out of order on PostgreSQL (two writers took 7 and 8, 8 committed
first): a version skipped over is a *gap*, asked for again on every round until it shows up
or ``GAP_SECONDS`` passed (its transaction rolled back).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.memory import Snapshot, apply_changes
from db.changes import CHANNEL
from db.models import Change

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
GAP_SECONDS = 30.0
MAX_BATCH = 20_000


class ChangeFeed:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        get: Callable[[], Snapshot],
        put: Callable[[Snapshot], None],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.get = get
        self.put = put
        self.poll_seconds = poll_seconds
        self.gaps: dict[int, float] = {}
        self.applied = threading.Event()  # set after each round that applied something
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        # presence changes written by others (another controller, a guard's forgive):
        # on_presence(person ids, the session, monotonic time the read began)
        self.origin: str | None = None
        self.on_presence: Callable[[set[int], Session, float], None] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_listener()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except SQLAlchemyError:
                log.warning(
                    "change feed: database unavailable; the doors use memory", exc_info=True
                )
                self._close_listener()
                self._stop.wait(1.0)
                continue
            except Exception:
                log.exception("change feed round failed")
                self._stop.wait(1.0)
                continue
            self._wait()

    def step(self) -> int:
        """One round: apply every change committed past our version; returns how many."""
        snap = self.get()
        now = time.monotonic()
        self.gaps = {v: t for v, t in self.gaps.items() if now - t < GAP_SECONDS}
        with self.sessions() as s:
            cond = Change.version > snap.version
            if self.gaps:
                cond = or_(cond, Change.version.in_(list(self.gaps)))
            rows = s.execute(
                select(
                    Change.version, Change.table_name, Change.row_id, Change.person_id,
                    Change.origin,
                )  # fmt: skip
                .where(cond)
                .order_by(Change.version)
                .limit(MAX_BATCH)
            ).all()
            if not rows:
                return 0
            seen = {r[0] for r in rows}
            for v in seen:
                self.gaps.pop(v, None)
            top = max(seen)
            for v in range(snap.version + 1, top):
                if v not in seen:
                    self.gaps.setdefault(v, now)
            fresh = apply_changes(snap, s, [tuple(r[:4]) for r in rows])  # type: ignore[misc]
            moved = {
                int(r[3])
                for r in rows
                if r[1] == "presence" and r[3] is not None and r[4] != self.origin
            }
            if moved and self.on_presence is not None:
                self.on_presence(moved, s, now)
            s.rollback()
        self.put(fresh)
        self.applied.set()
        return len(rows)

    # --- waiting: LISTEN on PostgreSQL, a short sleep on SQLite ---------------------------

    def _wait(self) -> None:
        engine = self.sessions.kw.get("bind")
        if engine is None or engine.dialect.name != "postgresql":
            self._stop.wait(self.poll_seconds)
            return
        try:
            if self._listener is None:
                raw = engine.raw_connection()
                conn = raw.dbapi_connection
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self._listener = raw
            conn = self._listener.dbapi_connection
            for _ in conn.notifies(timeout=0.25, stop_after=1):
                break
        except Exception:
            log.warning("change feed: LISTEN failed; polling", exc_info=True)
            self._close_listener()
            self._stop.wait(self.poll_seconds)

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._listener.invalidate()
            self._listener = None
