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
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

from db.models import Command


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


def enqueue(
    session: Session, kind: CommandKind, payload: dict[str, Any], operator_id: int | None = None
) -> Command:
    """Add a command (flushes; the caller commits)."""
    cmd = Command(kind=kind.value, payload=payload, operator_id=operator_id)
    session.add(cmd)
    session.flush()
    return cmd
