"""The door state machine: grant and release, contact, REX, relock, held/forced timers.

Functions of the controller (its loop thread only). A grant's row is drafted in the current
work; the strike is released by the work's callback, after the row is durable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller import escorts, keypad
from controller.decision import Decision
from controller.facts import CardFacts, DoorPolicy
from controller.occupancy import Occupant
from controller.recorder import PresenceEnter, PresenceLeave, RestoreAlarm
from controller.state import EscortWait, Passage, PinWait, RecentEscort, Result
from db.models import Decision as D
from db.models import Direction
from domain.reasons import AlarmKind, Reason
from hardware import ContactChanged, ExitRequested
from readers import Feedback

if TYPE_CHECKING:
    from controller.daemon import Controller
    from controller.state import DoorRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One presentation on its way to a grant: whose card, what was decided, where."""

    card: CardFacts
    decision: Decision
    reader: str
    direction: str
    base: dict[str, Any]  # the presentation's event fields

    @classmethod
    def waiting(cls, policy: DoorPolicy, wait: EscortWait | PinWait) -> Attempt:
        return cls(
            wait.card, wait.decision, wait.reader, wait.direction, escorts.base_for(policy, wait)
        )


@dataclass(frozen=True, slots=True)
class How:
    """How the grant came about: the factors checked, an escort, a reason given by a rule."""

    pin_given: bool = False
    purpose_given: bool = False
    escort: RecentEscort | None = None
    reason: Reason | None = None
    detail: dict[str, Any] | None = None


def grant(
    ctl: Controller, runtime: DoorRuntime, policy: DoorPolicy, a: Attempt, how: How = How()
) -> Result:
    """Let ``a`` through unless the door still wants something: a purpose code, or (two-person
    rule) a second entrant. The rows are drafted now; the strike is released after they are
    committed."""
    card = a.card
    assert card.person is not None
    if a.direction == Direction.IN and policy.area.code in ctl.lockdowns:
        # locked down while this presentation waited for its PIN, purpose code or escort
        ev = ctl.event(decision=D.DENIED, reason=Reason.LOCKDOWN, **a.base)
        ctl.feedback_after(a.reader, Feedback.DENIED)
        return {"decision": D.DENIED, "reason": Reason.LOCKDOWN, "event_id": ev}
    now_mono = ctl.monotonic()
    if (
        policy.ask_purpose
        and not how.purpose_given
        and a.direction == Direction.IN
        and not card.person.is_visitor
    ):
        runtime.pin_wait = PinWait(
            card,
            a.decision,
            a.reader,
            a.direction,
            now_mono + policy.pin_timeout_seconds,
            purpose=True,
            pin_given=how.pin_given,
        )
        ctl.feedback(a.reader, Feedback.PIN_WANTED)
        return {"decision": D.PENDING, "reason": Reason.PURPOSE_WANTED}
    if needs_second_person(ctl, policy, card, a.direction):
        first = runtime.first_of_two
        if (
            first is None
            or now_mono - first.since > policy.escort_window_seconds
            or (first.card.person is not None and first.card.person.id == card.person.id)
        ):
            ev = ctl.event(decision=D.PENDING, reason=Reason.SECOND_PERSON_WANTED, **a.base)
            runtime.first_of_two = EscortWait(card, a.decision, a.reader, a.direction, now_mono, ev)
            ctl.feedback_after(a.reader, Feedback.WAIT)
            return {"decision": D.PENDING, "reason": Reason.SECOND_PERSON_WANTED, "event_id": ev}
        runtime.first_of_two = None
        granted(
            ctl,
            runtime,
            policy,
            Attempt.waiting(policy, first),
            How(detail={"waited_event_id": first.event_id}),
        )
    return granted(ctl, runtime, policy, a, how)


def granted(
    ctl: Controller, runtime: DoorRuntime, policy: DoorPolicy, a: Attempt, how: How
) -> Result:
    """The granted row, its passage, and the release after the commit."""
    card = a.card
    assert card.person is not None
    now_mono = ctl.monotonic()
    final = how.reason or factors_reason(a.decision, how.pin_given, how.purpose_given)
    detail = how.detail
    if ctl.recorder.offline:
        detail = {**(detail or {}), "offline": True}
    fields = {k: v for k, v in a.base.items() if k != "detail"}
    escort = how.escort
    escort_id = escort.card.person.id if escort and escort.card.person else None
    ev = ctl.event(
        decision=D.GRANTED,
        reason=final,
        purpose=a.decision.purpose if a.direction == Direction.IN else None,
        escort_person_id=escort_id,
        escort_event_id=escort.event_id if escort else None,
        detail=detail,
        **fields,
    )
    passage = Passage(
        person_id=card.person.id,
        area_id=policy.area.id,
        direction=a.direction,
        event_id=ev,
        visitor=card.person.is_visitor,
        escort_person_id=escort_id,
        visit_id=card.visit.id if card.visit else None,
    )
    if runtime.has_contact:
        runtime.passages.append(passage)
    else:
        # No door contact fitted: nothing confirms the passage, so the grant counts; the
        # crossings of this input are applied together, visitors first (see apply_passages)
        runtime.crossing.append(passage)
        ctl.crossing_doors[runtime.code] = runtime
    reader = a.reader

    def release() -> None:
        release_strike(ctl, runtime, policy.strike_seconds)
        # after the commit that holds the row: the crash test checks this line against rows
        log.info("strike released at %s for event %d", runtime.code, ev)
        ctl.feedback(reader, Feedback.GRANTED)

    ctl.after_commit(release)
    if a.direction == Direction.IN:
        ctl._watch_for_tailgating(runtime)
        if policy.snapshot_on_entry:
            ctl.record_snapshot(policy.id, now_mono, {"event_id": ev})
    if not card.person.is_visitor:
        escorts.staff_crossed(ctl, card.person.id, a.direction)
        recent = RecentEscort(card, a.decision, a.direction, now_mono, ev)
        escorts.remember_grant(ctl, runtime, recent)
        escorts.escort_arrived(ctl, runtime, policy, recent)
    return {"decision": D.GRANTED, "reason": final, "event_id": ev}


def factors_reason(decision: Decision, pin_given: bool, purpose_given: bool) -> Reason:
    """A plain entry grant names the factors that were checked (card, PIN, purpose code);
    never the reason that asked for them (``pin_wanted`` on a granted row)."""
    reason = decision.reason
    if reason in (Reason.PIN_WANTED, Reason.PURPOSE_WANTED):
        warned = decision.antipassback_warning
        reason = Reason.GRANTED_ANTIPASSBACK_WARNING if warned else Reason.GRANTED
    if reason != Reason.GRANTED:
        return reason
    if pin_given and purpose_given:
        return Reason.GRANTED_CARD_PIN_PURPOSE
    if pin_given:
        return Reason.GRANTED_CARD_PIN
    if purpose_given:
        return Reason.GRANTED_CARD_PURPOSE
    return Reason.GRANTED


def needs_second_person(
    ctl: Controller, policy: DoorPolicy, card: CardFacts, direction: str
) -> bool:
    if not policy.area.two_person_rule or direction != Direction.IN:
        return False
    if card.person is None or card.person.is_visitor:
        return False
    pending = any(
        p.area_id == policy.area.id and p.direction == Direction.IN and not p.visitor
        for d in ctl.doors.values()
        for p in d.passages
    )
    return ctl.occupancy.staff_count(policy.area.id) == 0 and not pending


def release_strike(ctl: Controller, runtime: DoorRuntime, seconds: float) -> None:
    runtime.released_until = ctl.monotonic() + seconds
    runtime.opened_during_release = runtime.hw.is_open
    runtime.hw.release()


def on_contact(ctl: Controller, msg: ContactChanged) -> None:
    runtime = ctl.doors.get(msg.door)
    if runtime is None:
        return
    policy = ctl.policy(runtime)
    where = dict(door_id=policy.id, area_id=policy.area.id)
    if msg.open:
        runtime.open_since = msg.monotonic
        if runtime.released_until is not None:
            runtime.opened_during_release = True
            ctl.event(kind="door", decision=D.INFO, reason=Reason.DOOR_OPENED, **where)
            passages, runtime.passages = runtime.passages, []
            apply_passages(ctl, policy, passages)
        else:
            ev = ctl.event(kind="door", decision=D.INFO, reason=Reason.DOOR_FORCED, **where)
            ctl.raise_alarm(AlarmKind.DOOR_FORCED, event_id=ev, **where)
    else:
        runtime.open_since = None
        ctl.event(kind="door", decision=D.INFO, reason=Reason.DOOR_CLOSED, **where)
        now = ctl.clock()
        if runtime.held_alarm_raised:
            runtime.held_alarm_raised = False
            ctl.event(kind="door", decision=D.INFO, reason=Reason.DOOR_HELD_RESTORED, **where)
            ctl.work.ops.append(RestoreAlarm(AlarmKind.DOOR_HELD.value, now, door_id=policy.id))
        ctl.work.ops.append(RestoreAlarm(AlarmKind.DOOR_FORCED.value, now, door_id=policy.id))
        if runtime.released_until is not None:
            relock(ctl, runtime, policy)  # relock on close: one grant, one passage
    ctl.status("door", msg.door, "open" if msg.open else "closed")


def on_rex(ctl: Controller, msg: ExitRequested) -> None:
    runtime = ctl.doors.get(msg.door)
    if runtime is None:
        return
    policy = ctl.policy(runtime)
    ctl.event(
        kind="exit_button",
        decision=D.GRANTED,
        reason=Reason.EXIT_BUTTON,
        direction=Direction.OUT,
        door_id=policy.id,
        area_id=policy.area.id,
    )
    ctl.after_commit(lambda: release_strike(ctl, runtime, policy.strike_seconds))


def apply_passages(ctl: Controller, policy: DoorPolicy, passages: list[Passage]) -> None:
    """Turn confirmed passages into occupancy; visitors first so an escort leaving with
    their visitor does not look like leaving them behind."""
    now = ctl.clock()
    for p in sorted(passages, key=lambda p: not p.visitor):
        ctl.occupancy.crossed(p.person_id, p.area_id)
        if p.direction == Direction.IN:
            ctl.occupancy.enter(
                p.area_id, Occupant(p.person_id, p.visitor, now, p.escort_person_id, p.visit_id)
            )
            ctl.work.ops.append(
                PresenceEnter(
                    p.area_id, p.person_id, now, p.event_id, p.escort_person_id, p.visit_id
                )
            )
            continue
        ctl.occupancy.leave(p.area_id, p.person_id)
        ctl.work.ops.append(PresenceLeave(p.person_id, p.area_id))
        if p.visitor:
            continue
        if policy.area.two_person_rule and ctl.occupancy.staff_count(p.area_id) == 1:
            ctl.raise_alarm(
                AlarmKind.TWO_PERSON_VIOLATION,
                door_id=policy.id,
                area_id=p.area_id,
                person_id=p.person_id,
            )
        left = ctl.occupancy.visitors_escorted_by(p.person_id, p.area_id)
        if left:
            ctl.raise_alarm(
                AlarmKind.ESCORT_LEFT_VISITOR,
                door_id=policy.id,
                area_id=p.area_id,
                person_id=p.person_id,
                detail={"visitors": [o.person_id for o in left]},
            )


def relock(ctl: Controller, runtime: DoorRuntime, policy: DoorPolicy) -> None:
    runtime.hw.lock()
    runtime.released_until = None
    if not runtime.opened_during_release:
        for p in runtime.passages:
            ctl.event(
                kind="presentation",
                decision=D.INFO,
                reason=Reason.NOT_USED,
                door_id=policy.id,
                area_id=policy.area.id,
                person_id=p.person_id,
                direction=p.direction,
                detail={"granted_event_id": p.event_id},
            )
    runtime.passages = []
    runtime.opened_during_release = False


def door_timers(ctl: Controller, runtime: DoorRuntime, now_mono: float) -> None:
    cached = runtime.policy
    if cached is None:
        return
    due_relock = runtime.released_until is not None and now_mono >= runtime.released_until
    due_held = (
        runtime.open_since is not None
        and not runtime.held_alarm_raised
        and runtime.has_contact
        and now_mono - runtime.open_since >= cached.held_open_seconds
    )
    wait = runtime.pin_wait
    due_pin = wait is not None and not wait.checking and now_mono >= wait.deadline
    window = cached.escort_window_seconds
    expired_waits = [w for w in runtime.escort_waits if now_mono - w.since > window]
    first = runtime.first_of_two
    lonely = first is not None and now_mono - first.since > window
    escorts.forget_old_grants(ctl, runtime, now_mono, window)
    if not (due_relock or due_held or due_pin or expired_waits or lonely):
        return
    policy = ctl.policy(runtime)
    where = dict(door_id=policy.id, area_id=policy.area.id)
    if due_relock:
        relock(ctl, runtime, policy)
    if due_held:
        runtime.held_alarm_raised = True
        ev = ctl.event(kind="door", decision=D.INFO, reason=Reason.DOOR_HELD, **where)
        ctl.raise_alarm(AlarmKind.DOOR_HELD, event_id=ev, **where)
    if due_pin:
        keypad.end_pin_wait(ctl, runtime, Reason.PIN_TIMEOUT, policy)
    for w in expired_waits:
        runtime.escort_waits.remove(w)
        reason = Reason.ESCORT_NOT_ALLOWED if w.refused_by else Reason.ESCORT_REQUIRED
        ctl.event(
            decision=D.DENIED,
            reason=reason,
            detail={"waited_event_id": w.event_id},
            **escorts.base_for(policy, w),
        )
        ctl.feedback_after(w.reader, Feedback.DENIED)
    if lonely and first is not None:
        runtime.first_of_two = None
        ctl.event(
            decision=D.DENIED,
            reason=Reason.TWO_PERSON_TIMEOUT,
            detail={"waited_event_id": first.event_id},
            **escorts.base_for(policy, first),
        )
        ctl.feedback_after(first.reader, Feedback.DENIED)
