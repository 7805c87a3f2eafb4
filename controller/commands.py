"""Commands from the web and the CLI, each carried out exactly once.

The web never touches door state: it writes a row in ``commands`` (db.commands). A poller
thread (not the door thread) reads the queued ones and hands each to the loop thread, whose
work for it (the tap's row, the forgive's row...) also marks the command done: the effect and
the command's end are one transaction, so a crash either loses both (the command runs after
restart) or neither (it never runs again). Alarm acknowledgements touch only rows, so the
poller does them itself, in one transaction with the command's end. A bad command fails with
a reason in its ``result`` and changes nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from controller import alarms as alarm_rows
from controller import remote
from controller.recorder import MaskKeys, PresenceLeave
from controller.state import Call
from db.commands import CommandKind, expire_overdue
from db.engine import session_scope
from db.models import Command, CommandState
from db.models import Decision as D
from domain.reasons import Reason
from readers import CardPresented, KeypadInput
from readers.sim import SimReader

if TYPE_CHECKING:
    from controller.daemon import Controller

log = logging.getLogger(__name__)
REFUSED = (KeyError, ValueError, LookupError, TypeError)


def _first_line(exc: BaseException) -> str:
    """The driver's message without the statement and parameters SQLAlchemy appends."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}"


START_ATTEMPTS = 20


class CommandRunner:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.db_unavailable = False  # logged once per outage

    def start(self) -> None:
        for attempt in range(START_ATTEMPTS):
            try:
                with session_scope(self.ctl.sessions) as s:
                    # an enrolment waits for a card in memory: a restart ended it
                    s.execute(
                        update(Command)
                        .where(Command.state == CommandState.RUNNING, self._mine())
                        .values(
                            state=CommandState.FAILED,
                            result={"error": "interrupted by a restart"},
                        )
                    )
                break
            except OperationalError:
                # SQLite: another controller starting at the same moment holds the write
                # lock (WAL can refuse at once, past the busy timeout): the doors already
                # run, so try again rather than stop the controller
                if attempt == START_ATTEMPTS - 1:
                    raise
                log.warning("commands: database busy at start; trying again")
                time.sleep(0.5)
        self._thread = threading.Thread(target=self._run, name="commands", daemon=True)
        self._thread.start()

    def _mine(self) -> Any:
        """Commands for this controller (db.commands.route), and those for any controller."""
        return or_(Command.controller == self.ctl.controller_id, Command.controller.is_(None))

    def _take_unrouted(self, s: Any, cmd_id: int) -> bool:
        """A command for any controller is taken by the first that names itself on it."""
        result = s.execute(
            update(Command)
            .where(Command.id == cmd_id, Command.controller.is_(None))
            .values(controller=self.ctl.controller_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.ctl.cfg.controller.command_poll_seconds):
            self.poll_once()

    def poll_once(self) -> None:
        """One poll; a database that cannot be read is logged once when it goes and once
        when it is back (it is polled every second: a traceback each time buried the log)."""
        try:
            self.poll()
        except SQLAlchemyError as exc:
            if not self.db_unavailable:
                self.db_unavailable = True
                log.warning(
                    "commands: %s (%s): commands wait until it is back",
                    Reason.DATABASE_UNAVAILABLE.value,
                    _first_line(exc),
                )
            return
        except Exception:
            log.exception("command poll failed")
            return
        if self.db_unavailable:
            self.db_unavailable = False
            log.warning("commands: %s: polling again", Reason.DATABASE_RESTORED.value)

    def poll(self) -> None:
        """Hand the queued commands over (poller thread)."""
        with self._lock:
            busy = set(self.in_flight)
        with session_scope(self.ctl.sessions) as s:
            # a command whose sender stopped waiting (a timed-out tap) never runs later; looked
            # for first, so that a poll with nothing to expire takes no write lock from the
            # doors' writer
            now = self.ctl.clock()
            overdue = s.scalar(
                select(Command.id)
                .where(
                    Command.state == CommandState.QUEUED,
                    Command.expires_at.is_not(None),
                    Command.expires_at <= now,
                )
                .limit(1)
            )
            if overdue is not None:
                expire_overdue(s, now)
            rows = s.execute(
                select(
                    Command.id,
                    Command.kind,
                    Command.payload,
                    Command.operator_id,
                    Command.controller,
                )  # fmt: skip
                .where(Command.state == CommandState.QUEUED, self._mine())
                .order_by(Command.id)
                .limit(50)
            ).all()
            taken = [
                r for r in rows
                if r[0] not in busy and (r[4] is not None or self._take_unrouted(s, r[0]))
            ]  # fmt: skip
        for cmd_id, kind, payload, operator_id, _target in taken:
            p = dict(payload or {})
            if kind in (CommandKind.ACK_ALARM, CommandKind.CLEAR_ALARM):
                self._alarm_command(cmd_id, kind, p, operator_id)
                continue
            with self._lock:
                self.in_flight.add(cmd_id)
            self.ctl.queue.put(Call(functools.partial(self._on_loop, cmd_id, kind, p, operator_id)))

    def _on_loop(self, cmd_id: int, kind: str, p: dict[str, Any], operator_id: int | None) -> None:
        ctl = self.ctl

        def done() -> None:
            with self._lock:
                self.in_flight.discard(cmd_id)

        with ctl.unit():
            try:
                result = self._execute(cmd_id, kind, p, operator_id)
            except REFUSED as exc:
                log.warning("command %s (%s) refused: %s", cmd_id, kind, exc)
                ctl.finish_command(cmd_id, CommandState.FAILED, {"error": str(exc)})
            else:
                if kind == CommandKind.ENROL:
                    ctl.finish_command(cmd_id, CommandState.RUNNING, {})
                elif result is not None:
                    ctl.finish_command(cmd_id, CommandState.DONE, dict(result))
                else:
                    return  # finished later in the work of its effect (a PIN being checked)
            ctl.after_commit(done)

    def finished(self, cmd_id: int) -> None:
        """A command finished in a later work (after the PIN check): poll may forget it."""
        with self._lock:
            self.in_flight.discard(cmd_id)

    def _alarm_command(
        self, cmd_id: int, kind: str, p: dict[str, Any], operator_id: int | None
    ) -> None:
        now = self.ctl.clock()
        try:
            with session_scope(self.ctl.sessions) as s:
                action = (
                    alarm_rows.acknowledge if kind == CommandKind.ACK_ALARM else alarm_rows.clear
                )
                alarm = action(
                    s, int(p["alarm_id"]), operator_id, str(p.get("comment", ""))[:2000], now
                )
                s.flush()
                still = alarm_rows.audible_unacknowledged(s, self.ctl.controller_id)
                cmd = s.get(Command, cmd_id)
                if cmd is not None:
                    cmd.state = CommandState.DONE
                    cmd.processed_at = now
                    cmd.result = {"alarm_id": int(p["alarm_id"]), "state": alarm.state}
        except REFUSED as exc:
            log.warning("command %s (%s) refused: %s", cmd_id, kind, exc)
            self._fail(cmd_id, str(exc))
            return
        outputs = self.ctl.alarm_outputs
        if outputs is not None and not still:
            self.ctl.queue.put(Call(lambda: outputs.set(False)))

    def _fail(self, cmd_id: int, error: str) -> None:
        with session_scope(self.ctl.sessions) as s:
            cmd = s.get(Command, cmd_id)
            if cmd is not None:
                cmd.state = CommandState.FAILED
                cmd.result = {"error": error}
                cmd.processed_at = self.ctl.clock()

    def expire_enrolments(self) -> None:
        now_mono = self.ctl.monotonic()
        for reader, (cmd_id, deadline) in list(self.ctl.enrolments.items()):
            if deadline < now_mono:
                del self.ctl.enrolments[reader]
                self.ctl.finish_command(cmd_id, CommandState.FAILED, {"error": "timeout"})

    def _sim_reader(self, reader_id: str) -> SimReader:
        reader = self.ctl.readers.get(str(reader_id))
        if not isinstance(reader, SimReader):
            raise ValueError(f"reader {reader_id!r} is not a simulated reader")
        return reader

    def _sim_input(self, door: str, part: str) -> Any:
        if not self.ctl._sim or door not in self.ctl.doors:
            raise ValueError(f"door {door!r} is not a simulated door")
        inp = getattr(self.ctl.doors[door].hw, part)
        if inp is None:
            raise ValueError(f"door {door!r} has no {part}")
        return inp

    def _execute(self, cmd_id: int, kind: str, p: dict[str, Any], operator_id: int | None) -> Any:
        """Carry a command out on the loop thread, inside the current unit of work."""
        ctl = self.ctl
        now = ctl.clock()
        if kind == CommandKind.TAP:
            reader = self._sim_reader(p["reader"])
            card = str(p["card"]).strip().upper()
            if not card or len(card) > 64:
                raise ValueError("card id must be 1 to 64 characters")
            return ctl.on_card(
                CardPresented(
                    reader.reader_id,
                    str(p.get("technology", "felica")),
                    card,
                    time.monotonic(),
                    now,
                )
            )
        if kind == CommandKind.KEYS:
            reader = self._sim_reader(p["reader"])
            # no PIN at rest: the command row keeps only how many keys were typed
            ctl.work.ops.append(MaskKeys(cmd_id, len(str(p.get("keys", "")))))
            result = ctl.on_keys(
                KeypadInput(reader.reader_id, str(p["keys"]), time.monotonic(), now)
            )
            placed = ctl.cfg.reader_door(reader.reader_id)
            wait = ctl.doors[placed[0]].pin_wait if placed else None
            if wait is not None and wait.checking and cmd_id:
                wait.command_id = cmd_id  # answered with the PIN check's outcome
                return None
            return result
        if kind == CommandKind.CONTACT:
            self._sim_input(p["door"], "contact").drive(bool(p["open"]))
            return {"queued": True}
        if kind == CommandKind.REX:
            self._sim_input(p["door"], "rex").pulse()
            return {"queued": True}
        if kind == CommandKind.TAMPER:
            self._sim_input(p["door"], "tamper").drive(bool(p["active"]))
            return {"queued": True}
        if kind == CommandKind.FORGIVE:
            person_id = int(p["person_id"])
            area_id = int(p["area_id"]) if p.get("area_id") is not None else None
            cleared = ctl.occupancy.forgive(person_id, area_id)
            ctl.work.ops.append(PresenceLeave(person_id, area_id))
            ctl.event(
                kind="forgive",
                decision=D.INFO,
                reason=Reason.FORGIVEN,
                person_id=person_id,
                area_id=area_id,
                detail={"operator_id": operator_id, "areas_cleared": cleared},
            )
            return {"areas_cleared": cleared}
        if kind == CommandKind.UNLOCK_DOOR:
            return remote.unlock_door(ctl, cmd_id, p, operator_id)
        if kind == CommandKind.LOCKDOWN:
            return remote.lockdown(ctl, cmd_id, p, operator_id)
        if kind == CommandKind.LIFT_LOCKDOWN:
            return remote.lift_lockdown(ctl, cmd_id, p, operator_id)
        if kind == CommandKind.ENROL:
            reader_id = str(p["reader"])
            if reader_id not in ctl.readers:
                raise ValueError(f"unknown reader {reader_id!r}")
            timeout = min(max(float(p.get("timeout", 30)), 1.0), 300.0)
            ctl.enrolments[reader_id] = (cmd_id, time.monotonic() + timeout)
            return None  # finished when the card comes
        raise ValueError(f"unknown command kind {kind!r}")
