"""Several controllers on one database: areas that span them, and each one's heartbeat.

**Presence.** An area may have doors on two controllers. Each controller keeps who is inside
in memory (controller.occupancy) and writes it to ``presence`` in the work of the crossing;
every presence write records a ``changes`` row naming its writer (``Change.origin``). The
change-feed thread (controller.feed) hands this module the people whose presence another
writer changed; their presence rows are read in the same round and the door thread sets
its memory of those people to what the database says. The database is the arbiter.

One exception keeps a controller's own recent decisions: a person whose presence this
controller changed in a work that is not yet committed, or committed after the database was
read, keeps the memory's state (the database read would be older than it). A later change
of theirs by another controller comes through the feed again.

While the database is away, each controller decides from what it knows: the others'
crossings arrive when the feed can read again (docs/controller.md, "Areas spanning
controllers").

**Heartbeat.** A thread of its own (never the door thread) writes the controller's health to
its ``controllers`` row every ``HEARTBEAT_SECONDS``: the last event it wrote, the works kept
in its journal, its offline readers. The console's status page reads it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from controller.occupancy import Occupant
from controller.recorder import PresenceEnter, PresenceLeave, Work
from controller.state import Call
from db import bulk
from db import controllers as ctl_rows
from db.engine import session_scope
from db.models import Event, Person, PersonKind
from db.models import Presence as PresenceRow

if TYPE_CHECKING:
    from controller.daemon import Controller

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = ctl_rows.HEARTBEAT_SECONDS


class PresenceSharing:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        ctl.feed.origin = ctl.controller_id
        # door thread only: people with presence ops not yet committed, and when (monotonic)
        # the last such op of each person was committed
        self.pending: dict[int, int] = {}
        self.local_at: dict[int, float] = {}
        self.applied = 0  # people set from the database (tests, logs)

    # --- the door thread: this controller's own presence writes -------------------------

    def track(self, work: Work) -> None:
        """Called for each work the door thread submits (controller.daemon.unit)."""
        people = {op.person_id for op in work.ops if isinstance(op, PresenceEnter | PresenceLeave)}
        if not people:
            return
        for p in people:
            self.pending[p] = self.pending.get(p, 0) + 1

        def committed() -> None:
            now = self.ctl.monotonic()
            for p in people:
                left = self.pending.get(p, 1) - 1
                if left > 0:
                    self.pending[p] = left
                else:
                    self.pending.pop(p, None)
                self.local_at[p] = now

        self.ctl.after_commit(committed)

    # --- the feed thread: what the others wrote --------------------------------------------

    def areas(self) -> set[int]:
        """The areas this controller has doors in: the only presence it decides on."""
        facts = self.ctl.facts
        if facts is None:
            return set()
        out = set()
        for code in self.ctl.cfg.doors:
            policy = facts.door(code)
            if policy is not None:
                out.add(policy.area.id)
        return out

    def from_feed(self, people: set[int], session: Session, read_started: float) -> None:
        mine = self.areas()
        if not mine:
            return
        dialect = session.get_bind().dialect
        rows = session.execute(
            select(PresenceRow, Person.kind)
            .join(Person, Person.id == PresenceRow.person_id)
            .where(
                bulk.one_of(PresenceRow.person_id, sorted(people), dialect),
                bulk.one_of(PresenceRow.area_id, sorted(mine), dialect),
            )
        ).all()
        found: dict[int, dict[int, Occupant]] = {p: {} for p in people}
        for row, kind in rows:
            found[row.person_id][row.area_id] = Occupant(
                row.person_id,
                kind == PersonKind.VISITOR,
                row.entered_at,
                row.escort_person_id,
                row.visit_id,
            )
        self.ctl.queue.put(Call(lambda: self._apply(found, read_started, mine)))

    def _apply(
        self, found: dict[int, dict[int, Occupant]], read_started: float, scope: set[int]
    ) -> None:
        occ = self.ctl.occupancy
        for person, areas in found.items():
            if self.pending.get(person) or self.local_at.get(person, -1.0) >= read_started:
                continue  # our own newer decision: the read is older than memory
            occ.replace_person(person, areas, scope)
            self.applied += 1


class Heartbeat:
    """The controller's health row, written from its own thread."""

    def __init__(self, ctl: Controller, seconds: float = HEARTBEAT_SECONDS) -> None:
        self.ctl = ctl
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.beat()
            except SQLAlchemyError:
                log.info("heartbeat: database unavailable")
            except Exception:
                log.exception("heartbeat failed")

    def backlog(self) -> int:
        """Works kept in the journal, not yet in the database."""
        path = self.ctl.recorder.journal.path
        try:
            return path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def beat(self) -> None:
        ctl = self.ctl
        me = ctl.controller_id
        offline = sorted(r for r, state in dict(ctl.reader_states).items()
                         if state != "online" and r in ctl.readers)  # fmt: skip
        started = time.monotonic()
        with session_scope(ctl.sessions) as s:
            last = s.scalar(select(func.max(Event.occurred_at)).where(Event.controller == me))
            ctl_rows.heartbeat(
                s,
                me,
                ctl.clock(),
                last_event_at=last,
                journal_backlog=self.backlog(),
                offline_readers=offline,
            )
        self.beats += 1
        log.debug("heartbeat written in %.1f ms", (time.monotonic() - started) * 1000)
