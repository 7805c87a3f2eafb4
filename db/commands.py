"""The command queue: how the web and the CLI ask the controller to do something.

The web never touches door state; it enqueues a command row and the controller (the single
owner of door state) carries it out and writes ``result``. Payloads by kind:

- ``tap``        {"reader": id, "card": hex, "technology": "felica"}  (sim readers only)
- ``keys``       {"reader": id, "keys": "123456#"}  (sim readers; redacted after use)
- ``contact``    {"door": code, "open": bool}      (sim doors only)
- ``rex``        {"door": code}                    (sim doors only)
- ``tamper``     {"door": code, "active": bool}    (sim doors only)
- ``ack_alarm``  {"alarm_id": int, "comment": str}
- ``clear_alarm``{"alarm_id": int, "comment": str}
- ``forgive``    {"person_id": int, "area_id": int | None}   (anti-passback reset)
- ``enrol``      {"reader": id, "timeout": seconds}: the next card at that reader is not an
                 access attempt; its id goes to ``result`` {"technology", "card_id"}
- ``unlock_door``   {"door": code, "reason": str}: release the strike for the door's unlock
                    time, then relock (a manager's remote momentary unlock)
- ``lockdown``      {"area": code, "reason": str}: every card refused at the area's doors
- ``lift_lockdown`` {"area": code, "reason": str}

Several controllers on one database: each command names the controller that carries it out
(``Command.controller``), the owner of its reader, door or alarm (``route``), and only that
controller takes it. A ``forgive`` concerns an area, which may have doors on several
controllers: one command is queued for each of them (each keeps its own memory of who is
inside), and ``enqueue`` returns the first.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db import controllers as ctl_rows
from db.models import Area, Command, CommandState
from db.types import utcnow


class CommandKind(enum.StrEnum):
    TAP = "tap"
    KEYS = "keys"
    CONTACT = "contact"
    REX = "rex"
    TAMPER = "tamper"
    ACK_ALARM = "ack_alarm"
    CLEAR_ALARM = "clear_alarm"
    FORGIVE = "forgive"
    ENROL = "enrol"
    UNLOCK_DOOR = "unlock_door"
    LOCKDOWN = "lockdown"
    LIFT_LOCKDOWN = "lift_lockdown"


# Remote door control is carried out now or never: a manager who asked for an unlock (or a
# lockdown) while the controller was away must not see it happen minutes later unannounced.
DOOR_CONTROL_EXPIRES_SECONDS = 60.0
DOOR_CONTROL_KINDS = frozenset(
    {CommandKind.UNLOCK_DOOR, CommandKind.LOCKDOWN, CommandKind.LIFT_LOCKDOWN}
)


EXPIRED = {"error": "expired"}


def enqueue(
    session: Session,
    kind: CommandKind,
    payload: dict[str, Any],
    operator_id: int | None = None,
    *,
    expires_in: float | None = None,
    now: datetime | None = None,
) -> Command:
    """Add a command (flushes; the caller commits). ``expires_in`` seconds: after that the
    command is not carried out any more."""
    created = now or utcnow()
    expires_at = created + timedelta(seconds=expires_in) if expires_in is not None else None
    cmds = [
        Command(
            kind=kind.value,
            payload=payload,
            operator_id=operator_id,
            created_at=created,
            expires_at=expires_at,
            controller=target,
        )
        for target in route(session, kind, payload)
    ]
    session.add_all(cmds)
    session.flush()
    return cmds[0]


def route(session: Session, kind: CommandKind, payload: dict[str, Any]) -> list[str | None]:
    """The controllers that carry a command out ([None]: any; a reader or door no controller
    has claimed yet is left to whichever takes it, which refuses what it does not run)."""
    try:
        if "reader" in payload:
            return [ctl_rows.controller_of_reader(session, str(payload["reader"]))]
        if "door" in payload:
            return [ctl_rows.controller_of_door(session, str(payload["door"]))]
        if "alarm_id" in payload:
            return [ctl_rows.controller_of_alarm(session, int(payload["alarm_id"]))]
        if kind == CommandKind.FORGIVE:
            area = payload.get("area_id")
            targets: list[str | None] = list(
                ctl_rows.controllers_of_area(session, int(area) if area is not None else None)
            )
            return targets or [None]
        if kind in (CommandKind.LOCKDOWN, CommandKind.LIFT_LOCKDOWN) and "area" in payload:
            # an area may have doors on several controllers: each locks its own doors
            area_id = session.scalar(select(Area.id).where(Area.code == str(payload["area"])))
            if area_id is not None:
                return list(ctl_rows.controllers_of_area(session, area_id)) or [None]
    except (TypeError, ValueError):
        pass  # a malformed payload: the controller refuses it with a reason
    return [None]


def is_expired(cmd: Command, now: datetime) -> bool:
    return cmd.expires_at is not None and cmd.expires_at <= now


def _fail_if_queued(session: Session, *where: Any, now: datetime) -> int:
    result = session.execute(
        update(Command)
        .where(Command.state == CommandState.QUEUED, *where)
        .values(state=CommandState.FAILED, result=EXPIRED, processed_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def expire(session: Session, cmd_id: int, now: datetime | None = None) -> bool:
    """Withdraw a command its sender stopped waiting for: True when it was still queued (it
    will never run), False when the controller had already taken it. One conditional UPDATE,
    so it cannot overwrite a result the controller wrote meanwhile."""
    return _fail_if_queued(session, Command.id == cmd_id, now=now or utcnow()) == 1


def expire_overdue(session: Session, now: datetime | None = None) -> int:
    """Mark every queued command past its ``expires_at`` failed/expired; returns how many."""
    now = now or utcnow()
    return _fail_if_queued(
        session, Command.expires_at.is_not(None), Command.expires_at <= now, now=now
    )


def claim(session: Session, cmd_id: int, now: datetime | None = None) -> Command | None:
    """Take a queued command for execution (queued -> running, atomically), or None when it
    is gone, already taken, or expired (then it is marked failed/expired and never runs).

    The controller should take commands through this; until it does, ``expire`` on the
    sender's side keeps a timed-out ``tap`` from running later."""
    now = now or utcnow()
    if _fail_if_queued(
        session,
        Command.id == cmd_id,
        Command.expires_at.is_not(None),
        Command.expires_at <= now,
        now=now,
    ):
        return None
    taken = session.execute(
        update(Command)
        .where(Command.id == cmd_id, Command.state == CommandState.QUEUED)
        .values(state=CommandState.RUNNING)
        .execution_options(synchronize_session=False)
    )
    if not getattr(taken, "rowcount", 0):
        return None
    cmd = session.get(Command, cmd_id, populate_existing=True)
    return cmd
