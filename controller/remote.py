"""Remote door control from the console (issue 13): a momentary unlock of one door, the
lockdown of an area and its lifting. Functions of the controller (its loop thread only),
called by controller.commands for the ``unlock_door``, ``lockdown`` and ``lift_lockdown``
commands a manager or administrator wrote in the command table.

Each one drafts an event row (hash-chained: a remote unlock is evidence that the door opened
without a card) carrying who asked (operator id), why (the required reason) and the command,
in the same work as the command's end. A remote unlock releases the strike only after that
row is committed, for the door's unlock time, then relocks like a grant (relock on close).

Lockdown: every card presented to *enter* at a door of the area is refused with ``lockdown``,
staff included, until it is lifted; released strikes of the area relock at once. Leaving
stays free (life safety): the exit button (REX) still releases the strike, and a card at an
exit reader is decided as usual, so an exit is still recorded with the person who left.
The state is kept as a device_status row (kind ``lockdown``, key = the area's code) written
in the same transaction as the event row, and loaded again at start: a restart of the
controller neither lifts nor forgets a lockdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller import doors
from controller.state import Result
from db.lockdowns import MAX_REASON
from db.models import Decision as D
from domain.reasons import Reason
from domain.vocabulary import DOOR_CONTROL_EVENT, LOCKDOWN_STATUS, LockdownState

if TYPE_CHECKING:
    from controller.daemon import Controller


def _reason(p: dict[str, Any]) -> str:
    reason = str(p.get("reason") or "").strip()
    if not reason:
        raise ValueError("a reason is required")
    return reason[:MAX_REASON]


def _area(ctl: Controller, code: str) -> tuple[int, list[Any]]:
    """The area's id and its doors' runtimes, or ValueError for an area with no door here."""
    found = [
        rt
        for rt in ctl.doors.values()
        if rt.policy is not None and ctl.policy(rt).area.code == code
    ]
    if not found:
        raise ValueError(f"area {code!r} has no door on this controller")
    return ctl.policy(found[0]).area.id, found


def unlock_door(ctl: Controller, cmd_id: int, p: dict[str, Any], operator_id: int | None) -> Result:
    code = str(p["door"])
    runtime = ctl.doors.get(code)
    if runtime is None:
        raise ValueError(f"unknown door {code!r}")
    reason = _reason(p)
    policy = ctl.policy(runtime)
    if policy.area.code in ctl.lockdowns:
        # a lockdown means no entry: lifting it is a separate, audited decision
        raise ValueError(f"area {policy.area.code!r} is locked down: lift the lockdown first")
    ev = ctl.event(
        kind=DOOR_CONTROL_EVENT,
        decision=D.INFO,
        reason=Reason.REMOTE_UNLOCK,
        door_id=policy.id,
        area_id=policy.area.id,
        detail={"operator_id": operator_id, "reason": reason, "command_id": cmd_id},
    )
    seconds = policy.strike_seconds
    ctl.after_commit(lambda: doors.release_strike(ctl, runtime, seconds))
    return {"door": code, "event_id": ev, "seconds": seconds}


def lockdown(ctl: Controller, cmd_id: int, p: dict[str, Any], operator_id: int | None) -> Result:
    code = str(p["area"])
    area_id, runtimes = _area(ctl, code)
    reason = _reason(p)
    if code in ctl.lockdowns:
        return {"area": code, "already": True}
    ev = ctl.event(
        kind=DOOR_CONTROL_EVENT,
        decision=D.INFO,
        reason=Reason.LOCKDOWN_STARTED,
        area_id=area_id,
        detail={"operator_id": operator_id, "reason": reason, "command_id": cmd_id},
    )
    detail = {
        "operator_id": operator_id,
        "reason": reason,
        "event_id": ev,
        "since": ctl.clock().isoformat(),
    }
    ctl.lockdowns[code] = detail
    ctl.status(LOCKDOWN_STATUS, code, LockdownState.ACTIVE, detail=detail)
    for runtime in runtimes:
        # a grant not yet used, a remote unlock, a waiting PIN: the door locks now
        if runtime.released_until is not None:
            doors.relock(ctl, runtime, ctl.policy(runtime))
    return {"area": code, "event_id": ev}


def lift_lockdown(
    ctl: Controller, cmd_id: int, p: dict[str, Any], operator_id: int | None
) -> Result:
    code = str(p["area"])
    area_id, _ = _area(ctl, code)
    reason = _reason(p)
    if code not in ctl.lockdowns:
        return {"area": code, "already": True}
    ev = ctl.event(
        kind=DOOR_CONTROL_EVENT,
        decision=D.INFO,
        reason=Reason.LOCKDOWN_LIFTED,
        area_id=area_id,
        detail={"operator_id": operator_id, "reason": reason, "command_id": cmd_id},
    )
    del ctl.lockdowns[code]
    detail = {"operator_id": operator_id, "reason": reason, "event_id": ev}
    ctl.status(LOCKDOWN_STATUS, code, LockdownState.LIFTED, detail=detail)
    return {"area": code, "event_id": ev}


def refuses_entry(ctl: Controller, area_code: str, direction: str) -> bool:
    """True when a card presented in ``direction`` must be refused by a lockdown."""
    return direction == "in" and area_code in ctl.lockdowns
