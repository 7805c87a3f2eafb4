"""The keypad flow (4(3)): PIN after the card, purpose codes (4(2) 用件), timeouts.

argon2 is slow on purpose (~0.1-0.3 s; a wrong PIN is hashed against the duress variant
too): it runs in a worker thread, and its answer comes back as a ``PinChecked`` message. The
door that waits for its PIN waits; no other door does.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING

from controller.facts import CardFacts, DoorPolicy
from controller.recorder import PinCount
from controller.state import PinChecked, PinWait, Result
from db.models import CommandState, CredentialState
from db.models import Decision as D
from domain.pins import check_pin
from domain.reasons import AlarmKind, Reason
from readers import Feedback, KeypadInput

if TYPE_CHECKING:
    from controller.daemon import Controller
    from controller.state import DoorRuntime

PIN_MAX_KEYS = 12
FEED_CATCH_UP_SECONDS = 2.0
_tokens = itertools.count(1)


def on_keys(ctl: Controller, msg: KeypadInput) -> Result:
    placed = ctl.cfg.reader_door(msg.reader_id)
    if placed is None:
        return {"ignored": "unknown_reader"}
    runtime = ctl.doors[placed[0]]
    wait = runtime.pin_wait
    for key in msg.keys:
        ctl.feedback(msg.reader_id, Feedback.KEY)  # identical for every key
        if wait is None or wait.reader != msg.reader_id or wait.checking:
            continue
        if key == "*":
            wait.keys = ""
        elif key == "#" or (key.isdigit() and len(wait.keys) + 1 >= PIN_MAX_KEYS):
            if key.isdigit():
                wait.keys += key
            if wait.purpose:
                return purpose_entered(ctl, runtime, wait)
            return pin_entered(ctl, runtime, wait)
        elif key.isdigit() and key.isascii():
            wait.keys += key
    return {"decision": D.PENDING if wait else None}


def pin_entered(ctl: Controller, runtime: DoorRuntime, wait: PinWait) -> Result:
    """Hand the PIN to the argon2 worker; the answer comes back on the loop's queue."""
    cred = wait.card.credential
    assert cred is not None and cred.pin_hash is not None
    token = next(_tokens)
    wait.checking = token
    keys, wait.keys = wait.keys, ""
    pin_hash, door = cred.pin_hash, runtime.code

    def check() -> None:
        try:
            result = check_pin(pin_hash, keys)
        except Exception:  # a broken hash is a wrong PIN, never an open door
            result = "wrong"
        ctl.queue.put(PinChecked(door, token, result))
        ctl.pin_checks.discard(token)

    ctl.pin_checks.add(token)
    ctl.pin_pool.submit(check)
    return {"decision": D.PENDING, "reason": Reason.PIN_WANTED}


def pin_checked(ctl: Controller, msg: PinChecked) -> Result | None:

    runtime = ctl.doors.get(msg.door)
    wait = runtime.pin_wait if runtime else None
    if runtime is None or wait is None or wait.checking != msg.token:
        return None  # the wait ended meanwhile (another card at the door)
    runtime.pin_wait = None
    result = _pin_outcome(ctl, runtime, wait, msg)
    if wait.command_id is not None:
        ctl.finish_command(wait.command_id, CommandState.DONE, dict(result))
        cmd_id = wait.command_id
        ctl.after_commit(lambda: ctl.commands.finished(cmd_id))
    return result


def _pin_outcome(ctl: Controller, runtime: DoorRuntime, wait: PinWait, msg: PinChecked) -> Result:
    from controller.doors import Attempt, How, grant
    from controller.escorts import base_for

    cred = wait.card.credential
    assert cred is not None
    policy = ctl.policy(runtime)
    base = base_for(policy, wait)
    person_id = base["person_id"]
    failed = local_count(ctl, cred.id, cred.failed_pin_count)
    if msg.result == "wrong":
        failed += 1
        locked = failed >= ctl.cfg.controller.pin_max_attempts
        reason = Reason.PIN_LOCKOUT if locked else Reason.PIN_WRONG
        remember_count(ctl, cred.id, failed)
        ev = ctl.event(decision=D.DENIED, reason=reason, detail={"failed_pins": failed}, **base)
        ctl.work.ops.append(PinCount(cred.id, failed, lock=locked))
        if locked:
            ctl.raise_alarm(
                AlarmKind.PIN_LOCKOUT,
                door_id=policy.id,
                area_id=policy.area.id,
                reader=wait.reader,
                person_id=person_id,
                event_id=ev,
            )
        ctl.feedback_after(wait.reader, Feedback.DENIED)
        return {"decision": D.DENIED, "reason": reason}
    if failed:
        remember_count(ctl, cred.id, 0)
        ctl.work.ops.append(PinCount(cred.id, 0))
    if msg.result == "duress" and ctl.cfg.controller.duress_alarm:
        # Silent: the door opens as usual, the siren stays off, guards see the alarm.
        ctl.raise_alarm(
            AlarmKind.DURESS,
            door_id=policy.id,
            area_id=policy.area.id,
            reader=wait.reader,
            person_id=person_id,
            silent=True,
        )
    return grant(ctl, runtime, policy, Attempt.waiting(policy, wait), How(pin_given=True))


def purpose_entered(ctl: Controller, runtime: DoorRuntime, wait: PinWait) -> Result:
    """4(2) 用件の確認: the purpose code typed at the keypad becomes the entry's purpose."""
    from controller.doors import Attempt, How, grant
    from controller.escorts import base_for

    runtime.pin_wait = None
    text = ctl.cfg.purposes.get(wait.keys)
    wait.keys = ""
    policy = ctl.policy(runtime)
    base = base_for(policy, wait)
    if text is None:
        ctl.event(decision=D.DENIED, reason=Reason.PURPOSE_INVALID, **base)
        ctl.feedback_after(wait.reader, Feedback.DENIED)
        return {"decision": D.DENIED, "reason": Reason.PURPOSE_INVALID}
    decision = replace(wait.decision, purpose=text)
    return grant(
        ctl,
        runtime,
        policy,
        Attempt(wait.card, decision, wait.reader, wait.direction, base),
        How(purpose_given=True, pin_given=wait.pin_given),
    )


def end_pin_wait(
    ctl: Controller, runtime: DoorRuntime, reason: Reason, policy: DoorPolicy | None = None
) -> None:
    from controller.escorts import base_for

    wait = runtime.pin_wait
    runtime.pin_wait = None
    if wait is None:
        return
    policy = policy or ctl.policy(runtime)
    assert policy is not None
    if wait.purpose and reason == Reason.PIN_TIMEOUT:
        reason = Reason.PURPOSE_TIMEOUT
    ctl.event(decision=D.DENIED, reason=reason, **base_for(policy, wait))
    ctl.feedback_after(wait.reader, Feedback.DENIED)


def remember_count(ctl: Controller, cred_id: int, count: int) -> None:
    """The wrong-PIN count just written: it wins over memory until the feed has had time to
    bring the committed row back (then the database is the truth again: a manager's unlock)."""
    ctl.pin_failures[cred_id] = (count, float("inf"))

    def committed() -> None:
        if ctl.pin_failures.get(cred_id, (None,))[0] == count:
            ctl.pin_failures[cred_id] = (count, ctl.monotonic() + FEED_CATCH_UP_SECONDS)

    ctl.after_commit(committed)


def local_count(ctl: Controller, cred_id: int, remembered: int) -> int:
    mine = ctl.pin_failures.get(cred_id)
    if mine is None:
        return remembered
    if ctl.monotonic() > mine[1]:
        del ctl.pin_failures[cred_id]
        return remembered
    return mine[0]


def with_local_pin_count(ctl: Controller, card: CardFacts) -> CardFacts:
    cred = card.credential
    if cred is None or cred.id not in ctl.pin_failures:
        return card
    mine = local_count(ctl, cred.id, cred.failed_pin_count)
    if mine == cred.failed_pin_count:
        return card
    state = CredentialState.LOCKED if mine >= ctl.cfg.controller.pin_max_attempts else cred.state
    return replace(card, credential=replace(cred, failed_pin_count=mine, state=state))
