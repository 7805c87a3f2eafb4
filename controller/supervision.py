"""Supervision: reader, camera and tamper health, from memory.

The previous state of each reader and camera is held here (loaded once at start from the
published ``device_status`` rows, never from the event log), so a reader flapping costs a
dictionary lookup, and its status is published through the recorder, off the door thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.recorder import RestoreAlarm
from controller.state import CameraStatus
from db.models import Decision as D
from db.models import DeviceStatus
from domain.reasons import AlarmKind, Reason
from hardware.tailgating import TailgateResult
from readers import ReaderOffline, ReaderOnline, ReaderTamper

if TYPE_CHECKING:
    from controller.daemon import Controller


def load_states(session: Session) -> tuple[dict[str, str], dict[str, bool]]:
    """Readers' and cameras' last published states (one small indexed read)."""
    readers: dict[str, str] = {}
    cameras: dict[str, bool] = {}
    for kind, key, state in session.execute(
        select(DeviceStatus.kind, DeviceStatus.key, DeviceStatus.state).where(
            DeviceStatus.kind.in_(["reader", "camera"])
        )
    ):
        if kind == "reader":
            readers[key] = state
        else:
            cameras[key] = state == "online"
    return readers, cameras


def _where(ctl: Controller, door_code: str | None) -> dict[str, int | None]:
    policy = ctl.facts.door(door_code) if door_code and ctl.facts else None
    return dict(door_id=policy.id if policy else None, area_id=policy.area.id if policy else None)


def on_tamper(ctl: Controller, door_code: str | None, active: bool, reader: str | None) -> None:
    where = _where(ctl, door_code)
    if active:
        ev = ctl.event(kind="tamper", decision=D.INFO, reason=Reason.TAMPER, reader=reader, **where)
        ctl.raise_alarm(AlarmKind.TAMPER, event_id=ev, reader=reader, **where)
    else:
        ctl.event(
            kind="tamper", decision=D.INFO, reason=Reason.TAMPER_RESTORED, reader=reader, **where
        )
        ctl.work.ops.append(
            RestoreAlarm(
                AlarmKind.TAMPER.value, ctl.clock(), door_id=where["door_id"], reader=reader
            )
        )


def on_reader_tamper(ctl: Controller, msg: ReaderTamper) -> None:
    door = ctl.cfg.reader_door(msg.reader_id)
    on_tamper(ctl, door[0] if door else None, msg.active, msg.reader_id)


def on_reader_state(ctl: Controller, msg: ReaderOnline | ReaderOffline) -> None:
    online = isinstance(msg, ReaderOnline)
    placed = ctl.cfg.reader_door(msg.reader_id)
    where = _where(ctl, placed[0] if placed else None)
    previous = ctl.reader_states.get(msg.reader_id)
    state = "online" if online else "offline"
    ctl.reader_states[msg.reader_id] = state
    reader = ctl.readers.get(msg.reader_id)
    ctl.status(
        "reader",
        msg.reader_id,
        state,
        detail=None if online else {"reason": msg.reason},  # type: ignore[union-attr]
        last_card=reader.last_card if reader else None,
    )
    if online:
        if previous == "offline":
            ctl.event(
                kind="reader",
                decision=D.INFO,
                reason=Reason.READER_ONLINE,
                reader=msg.reader_id,
                **where,
            )
            ctl.work.ops.append(
                RestoreAlarm(AlarmKind.READER_OFFLINE.value, ctl.clock(), reader=msg.reader_id)
            )
    elif previous != "offline":
        assert isinstance(msg, ReaderOffline)
        ev = ctl.event(
            kind="reader",
            decision=D.INFO,
            reason=Reason.READER_OFFLINE,
            reader=msg.reader_id,
            detail={"reason": msg.reason[:200]},
            **where,
        )
        ctl.raise_alarm(AlarmKind.READER_OFFLINE, event_id=ev, reader=msg.reader_id, **where)


def on_camera_status(ctl: Controller, msg: CameraStatus) -> None:
    ctl.status(
        "camera",
        msg.camera_id,
        "online" if msg.online else "offline",
        detail=None if msg.online else {"reason": msg.reason[:200]},
    )
    previous = ctl.camera_states.get(msg.camera_id)
    ctl.camera_states[msg.camera_id] = msg.online
    key = f"camera:{msg.camera_id}"
    if msg.online and previous is False:
        ctl.work.ops.append(RestoreAlarm(AlarmKind.CAMERA_OFFLINE.value, ctl.clock(), reader=key))
    elif not msg.online and previous is not False:
        ctl.raise_alarm(AlarmKind.CAMERA_OFFLINE, reader=key, detail={"reason": msg.reason[:200]})


def on_tailgate_result(ctl: Controller, msg: TailgateResult) -> None:
    from controller.daemon import TAILGATE_WINDOW_SECONDS

    runtime = ctl.doors.get(msg.door)
    if runtime is None or msg.people is None or runtime.policy is None:
        return
    window_end = msg.granted_at + TAILGATE_WINDOW_SECONDS
    grants = sum(1 for t in runtime.grants_at if msg.granted_at <= t <= window_end)
    if msg.people <= grants:
        return
    where = dict(door_id=runtime.policy.id, area_id=runtime.policy.area.id)
    detail = {"people": msg.people, "grants": grants}
    ev = ctl.event(
        kind="tailgating", decision=D.INFO, reason=Reason.TAILGATING, detail=detail, **where
    )
    ctl.raise_alarm(AlarmKind.TAILGATING, event_id=ev, detail=detail, **where)
