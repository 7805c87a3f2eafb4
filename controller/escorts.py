"""Escorts (立会い): a visitor passes only with an eligible staff member's grant at the door.

Rules (the pure ones are ``usable_escort`` and ``escort_limit_reached``):
- an escort's grant lets through the visitors presenting at that door, same direction,
  within the door's escort window, each of them once (``RecentEscort.admitted``);
- a staff member's earlier escort grants end when they are granted in the other direction
  (who has badged out cannot escort anyone in on their old entry grant);
- at most ``max_visitors_per_escort`` visitors inside (or on their way in) per escort.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.decision import Decision, escort_eligible
from controller.facts import CardFacts, DoorPolicy
from controller.state import EscortWait, PinWait, RecentEscort, Result
from db.models import Decision as D
from db.models import Direction
from domain.reasons import Reason
from readers import CardPresented, Feedback

if TYPE_CHECKING:
    from controller.daemon import Controller
    from controller.state import DoorRuntime


def usable_escort(
    recent: RecentEscort, visitor: CardFacts, direction: str, now_mono: float, window: float
) -> bool:
    """Pure: may this staff grant still let this visitor through, in this direction?"""
    if recent.ended or now_mono - recent.at > window or recent.direction != direction:
        return False
    return visitor.person is None or visitor.person.id not in recent.admitted


def escort_limit_reached(inside: int, pending: int, limit: int) -> bool:
    return inside + pending >= limit


def staff_crossed(ctl: Controller, person_id: int, direction: str) -> None:
    """A staff grant in one direction ends their earlier grants in the other as escorts
    (marked ended: each door's list stays in time order and forgets them with its window)."""
    ctl.escort_index.end_other_direction(person_id, direction)


def remember_grant(ctl: Controller, runtime: DoorRuntime, recent: RecentEscort) -> None:
    """A staff grant that may escort the visitors presenting next at this door."""
    runtime.recent_escorts.append(recent)
    person_id = _person_id(recent)
    if person_id is not None:
        ctl.escort_index.add(person_id, recent)


def forget_old_grants(
    ctl: Controller, runtime: DoorRuntime, now_mono: float, window: float
) -> None:
    """Grants past the door's escort window can escort no one (they are in time order)."""
    grants = runtime.recent_escorts
    while grants and now_mono - grants[0].at > window:
        recent = grants.popleft()
        person_id = _person_id(recent)
        if person_id is not None and not recent.ended:
            ctl.escort_index.remove(person_id, recent)


def _person_id(r: RecentEscort) -> int | None:
    return r.card.person.id if r.card.person is not None else None


def visitor_needs_escort(
    ctl: Controller,
    runtime: DoorRuntime,
    policy: DoorPolicy,
    card: CardFacts,
    decision: Decision,
    msg: CardPresented,
    base: dict[str, Any],
) -> Result:
    from controller.doors import Attempt, How, grant

    now_mono = ctl.monotonic()
    direction = base["direction"]
    for recent in reversed(runtime.recent_escorts):
        if not usable_escort(recent, card, direction, now_mono, policy.escort_window_seconds):
            continue
        if escort_eligible(recent.card, recent.decision, card, policy):
            refusal = escort_limit(ctl, policy, recent, direction)
            if refusal is not None:
                ev = ctl.event(decision=D.DENIED, reason=refusal, **base)
                ctl.feedback_after(msg.reader_id, Feedback.DENIED)
                return {"decision": D.DENIED, "reason": refusal}
            if card.person is not None:
                recent.admitted.add(card.person.id)
            return grant(
                ctl,
                runtime,
                policy,
                Attempt(card, decision, msg.reader_id, direction, base),
                How(escort=recent, reason=Reason.GRANTED_ESCORTED),
            )
    ev = ctl.event(decision=D.PENDING, reason=Reason.ESCORT_WANTED, **base)
    runtime.escort_waits.append(EscortWait(card, decision, msg.reader_id, direction, now_mono, ev))
    ctl.feedback_after(msg.reader_id, Feedback.WAIT)
    return {"decision": D.PENDING, "reason": Reason.ESCORT_WANTED, "event_id": ev}


def escort_limit(
    ctl: Controller, policy: DoorPolicy, escort: RecentEscort, direction: str
) -> Reason | None:
    if direction != Direction.IN or escort.card.person is None:
        return None
    already = len(ctl.occupancy.visitors_escorted_by(escort.card.person.id, policy.area.id))
    pending = sum(
        1
        for d in ctl.doors.values()
        for p in [*d.passages, *d.crossing]
        if p.visitor and p.escort_person_id == escort.card.person.id and p.direction == Direction.IN
    )
    if escort_limit_reached(already, pending, policy.area.max_visitors_per_escort):
        return Reason.ESCORT_LIMIT
    return None


def escort_arrived(
    ctl: Controller, runtime: DoorRuntime, policy: DoorPolicy, escort: RecentEscort
) -> None:
    """A staff grant: let in the visitors waiting at this door that this person may escort."""
    from controller.doors import Attempt, How, grant

    now_mono = ctl.monotonic()
    for wait in list(runtime.escort_waits):
        if (
            now_mono - wait.since > policy.escort_window_seconds
            or wait.direction != escort.direction
        ):
            continue
        if not escort_eligible(escort.card, escort.decision, wait.card, policy):
            wait.refused_by = escort.card.person.id if escort.card.person else None
            continue
        runtime.escort_waits.remove(wait)
        assert wait.card.person is not None
        base = base_for(policy, wait)
        refusal = escort_limit(ctl, policy, escort, wait.direction)
        if refusal is not None:
            ctl.event(decision=D.DENIED, reason=refusal, **base)
            ctl.feedback_after(wait.reader, Feedback.DENIED)
            continue
        escort.admitted.add(wait.card.person.id)
        grant(
            ctl,
            runtime,
            policy,
            Attempt(wait.card, wait.decision, wait.reader, wait.direction, base),
            How(
                escort=escort,
                reason=Reason.GRANTED_ESCORTED,
                detail={"waited_event_id": wait.event_id},
            ),
        )


def base_for(policy: DoorPolicy, wait: EscortWait | PinWait) -> dict[str, Any]:
    card = wait.card
    return dict(
        kind="presentation",
        door_id=policy.id,
        area_id=policy.area.id,
        reader=wait.reader,
        direction=wait.direction,
        person_id=card.person.id if card.person else None,
        credential_id=card.credential.id if card.credential else None,
        technology=card.credential.technology if card.credential else None,
        raw_card_id=card.credential.card_id if card.credential else None,
        visitor=bool(card.person and card.person.is_visitor),
        visit_id=card.visit.id if card.visit else None,
    )
