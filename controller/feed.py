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

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.memory import Snapshot, apply_changes, load_snapshot
from db.changes import CHANNEL, notify_source
from db.models import Change

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# PostgreSQL: a round at most this often, however many NOTIFYs arrive. Every commit that
# records a change notifies (presence, each controller's own included), so in a burst the
# feed woke for each of them and its rounds took the CPU the door threads needed; now the
# notifications of a tenth of a second make one round.
MIN_ROUND_SECONDS = 0.1
# ... and at least this often, woken or not (what this controller wrote itself, and other
# controllers' presence in areas it has no door in, wake nothing: db.changes.notify_payload)
WAKE_SECONDS = 0.25
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
        self.db_unavailable = False
        self._round_at = 0.0  # monotonic start of the last round
        # presence changes written by others (another controller, a guard's forgive):
        # on_presence(person ids, the session, monotonic time the read began)
        self.origin: str | None = None
        # the areas whose presence this controller decides on (None: every area)
        self.areas: Callable[[], set[int]] | None = None
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
            except SQLAlchemyError as exc:
                if not self.db_unavailable:  # one line per outage, not one per second
                    self.db_unavailable = True
                    log.warning(
                        "change feed: database_unavailable (%s); the doors use memory",
                        exc.__class__.__name__,
                    )
                self._close_listener()
                self._stop.wait(1.0)
                continue
            except Exception:
                log.exception("change feed round failed")
                self._stop.wait(1.0)
                continue
            if self.db_unavailable:
                # caught up from the version it had: nothing committed meanwhile is missed
                self.db_unavailable = False
                log.warning("change feed: database_restored; at version %d", self.get().version)
            self._wait()

    def step(self) -> int:
        """One round: apply every change committed past our version; returns how many."""
        snap = self.get()
        now = self._round_at = time.monotonic()
        self.gaps = {v: t for v, t in self.gaps.items() if now - t < GAP_SECONDS}
        with self.sessions() as s:
            if s.get_bind().dialect.name == "postgresql":
                # every statement reads what is committed when it starts, as in the READ
                # COMMITTED transaction it would otherwise be; without it a round costs two
                # round trips fewer (BEGIN, ROLLBACK)
                s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            cond = Change.version > snap.version
            if self.gaps:
                cond = or_(cond, Change.version.in_(list(self.gaps)))
            rows = s.execute(
                select(
                    Change.version, Change.table_name, Change.row_id, Change.person_id,
                    Change.origin, Change.area_id,
                )  # fmt: skip
                .where(cond)
                .order_by(Change.version)
                .limit(MAX_BATCH)
            ).all()
            if not rows:
                return 0
            if rows[0][0] > snap.version + 1 and self._pruned_past(s, snap.version):
                # the changes we missed are gone (db.changes.prune): read everything again
                log.warning(
                    "change feed: changes past version %d were pruned (memory_too_old): "
                    "reading every cardholder again",
                    snap.version,
                )
                fresh = load_snapshot(s, snap.zone)
                s.rollback()
                self.gaps.clear()
                self.put(fresh)
                self.applied.set()
                return len(rows)
            seen = {r[0] for r in rows}
            for v in seen:
                self.gaps.pop(v, None)
            top = max(seen)
            for v in range(snap.version + 1, top):
                if v not in seen:
                    self.gaps.setdefault(v, now)
            fresh = apply_changes(snap, s, [tuple(r[:4]) for r in rows])  # type: ignore[misc]
            mine = self.areas() if self.areas is not None else None
            moved = {
                int(r[3])
                for r in rows
                if r[1] == "presence"
                and r[3] is not None
                and r[4] != self.origin
                # presence in an area without a door of ours decides nothing here
                and (r[5] is None or mine is None or r[5] in mine)
            }
            if moved and self.on_presence is not None:
                self.on_presence(moved, s, now)
            s.rollback()
        self.put(fresh)
        self.applied.set()
        return len(rows)

    @staticmethod
    def _pruned_past(s: Session, version: int) -> bool:
        """A version after ours is missing because it was pruned, not because it is still
        in flight: the oldest change kept is past it."""
        oldest = s.scalar(select(func.min(Change.version)))
        return oldest is not None and int(oldest) > version + 1

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
            self._wait_for_others(conn, WAKE_SECONDS)
            rest = self._round_at + MIN_ROUND_SECONDS - time.monotonic()
            if rest > 0:
                self._stop.wait(rest)
            for _ in conn.notifies(timeout=0.001):  # those that came meanwhile: this round's
                pass
        except Exception as exc:
            log.warning("change feed: LISTEN failed (%s); polling", exc.__class__.__name__)
            self._close_listener()
            self._stop.wait(self.poll_seconds)

    def _wait_for_others(self, conn: Any, seconds: float) -> None:
        """Until a NOTIFY that matters here, or ``seconds``: this controller's own commits
        (its presence, mostly) are in its memory already, and another controller's presence
        in areas without a door of ours decides nothing here; both wait for the next round."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            got = list(conn.notifies(timeout=left, stop_after=1))
            if not got:
                return  # the time is up
            got += conn.notifies(timeout=0.001)  # those already here: judged together
            if self._any_matters([n.payload for n in got]):
                return
            # in a burst the others' commits come hundreds a second: look at them in groups
            self._stop.wait(min(MIN_ROUND_SECONDS, max(0.0, deadline - time.monotonic())))

    def _any_matters(self, payloads: list[str]) -> bool:
        mine = self.areas() if self.areas is not None else None
        for payload in payloads:
            origin, areas = notify_source(payload)
            if self.origin is not None and origin == self.origin:
                continue
            if areas is None or mine is None or not areas.isdisjoint(mine):
                return True
        return False

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._listener.invalidate()
            self._listener = None
