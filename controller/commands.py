"""Commands from the web and the CLI, carried out on the controller thread.

The web never touches door state: it writes a row in ``commands`` (db.commands) and the
controller's loop polls, runs and answers it here. A bad command fails with a reason in its
``result`` and changes nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from controller import alarms as alarm_rows
from db.commands import CommandKind
from db.engine import session_scope
from db.models import Command, CommandState
from db.models import Decision as D
from domain.reasons import Reason
from readers import CardPresented, KeypadInput
from readers.sim import SimReader

if TYPE_CHECKING:
    from controller.daemon import Controller

log = logging.getLogger(__name__)


class CommandRunner:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl

    def poll(self) -> None:
        now_mono = time.monotonic()
        for reader, (cmd_id, deadline) in list(self.ctl.enrolments.items()):
            if deadline < now_mono:
                del self.ctl.enrolments[reader]
                self._finish_command(cmd_id, CommandState.FAILED, {"error": "timeout"})
        with session_scope(self.ctl.sessions) as s:
            ids = list(
                s.scalars(
                    select(Command.id)
                    .where(Command.state == CommandState.QUEUED)
                    .order_by(Command.id)
                    .limit(50)
                )
            )
        for cmd_id in ids:
            self._run_command(cmd_id)

    def _finish_command(self, cmd_id: int, state: CommandState, result: dict[str, Any]) -> None:
        with session_scope(self.ctl.sessions) as s:
            cmd = s.get(Command, cmd_id)
            if cmd is not None:
                cmd.state = state
                cmd.result = result
                cmd.processed_at = self.ctl.clock()

    def _run_command(self, cmd_id: int) -> None:
        with session_scope(self.ctl.sessions) as s:
            cmd = s.get(Command, cmd_id)
            if cmd is None or cmd.state != CommandState.QUEUED:
                return
            kind, payload, operator_id = cmd.kind, dict(cmd.payload or {}), cmd.operator_id
            if kind == CommandKind.KEYS:
                cmd.payload = {
                    **payload,
                    "keys": "*" * len(str(payload.get("keys", ""))),
                }  # no PIN at rest
            if kind == CommandKind.ENROL:
                cmd.state = CommandState.RUNNING  # finished by the next card at that reader
        try:
            result = self._execute(cmd_id, kind, payload, operator_id)
        except (KeyError, ValueError, LookupError, TypeError) as exc:
            log.warning("command %s (%s) refused: %s", cmd_id, kind, exc)
            self._finish_command(cmd_id, CommandState.FAILED, {"error": str(exc)})
            return
        if result is not None:
            self._finish_command(cmd_id, CommandState.DONE, result)

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

    def _execute(
        self, cmd_id: int, kind: str, p: dict[str, Any], operator_id: int | None
    ) -> dict[str, Any] | None:
        now = self.ctl.clock()
        if kind == CommandKind.TAP:
            reader = self._sim_reader(p["reader"])
            card = str(p["card"]).strip().upper()
            if not card or len(card) > 64:
                raise ValueError("card id must be 1 to 64 characters")
            return self.ctl.on_card(
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
            return self.ctl.on_keys(
                KeypadInput(reader.reader_id, str(p["keys"]), time.monotonic(), now)
            )
        if kind == CommandKind.CONTACT:
            self._sim_input(p["door"], "contact").drive(bool(p["open"]))
            return {"queued": True}
        if kind == CommandKind.REX:
            self._sim_input(p["door"], "rex").pulse()
            return {"queued": True}
        if kind == CommandKind.TAMPER:
            self._sim_input(p["door"], "tamper").drive(bool(p["active"]))
            return {"queued": True}
        if kind in (CommandKind.ACK_ALARM, CommandKind.CLEAR_ALARM):
            with session_scope(self.ctl.sessions) as s:
                action = (
                    alarm_rows.acknowledge if kind == CommandKind.ACK_ALARM else alarm_rows.clear
                )
                alarm = action(
                    s, int(p["alarm_id"]), operator_id, str(p.get("comment", ""))[:2000], now
                )
                s.flush()
                still = alarm_rows.audible_unacknowledged(s)
                state = alarm.state
            if self.ctl.alarm_outputs is not None and not still:
                self.ctl.alarm_outputs.set(False)
            return {"alarm_id": int(p["alarm_id"]), "state": state}
        if kind == CommandKind.FORGIVE:
            person_id = int(p["person_id"])
            area_id = int(p["area_id"]) if p.get("area_id") is not None else None
            with session_scope(self.ctl.sessions) as s:
                cleared = self.ctl.occupancy.forgive(s, person_id, area_id)
                self.ctl._event(
                    s,
                    kind="forgive",
                    decision=D.INFO,
                    reason=Reason.FORGIVEN,
                    person_id=person_id,
                    area_id=area_id,
                    detail={"operator_id": operator_id, "areas_cleared": cleared},
                )
            return {"areas_cleared": cleared}
        if kind == CommandKind.ENROL:
            reader_id = str(p["reader"])
            if reader_id not in self.ctl.readers:
                raise ValueError(f"unknown reader {reader_id!r}")
            timeout = min(max(float(p.get("timeout", 30)), 1.0), 300.0)
            self.ctl.enrolments[reader_id] = (cmd_id, time.monotonic() + timeout)
            return None  # finished when the card comes
        raise ValueError(f"unknown command kind {kind!r}")
