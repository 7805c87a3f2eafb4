"""The index of recent staff grants by person: what it ends, what it keeps, what it forgets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from controller import escorts
from controller.decision import Decision, Outcome
from controller.facts import CardFacts, PersonFacts
from controller.state import DoorRuntime, EscortIndex, RecentEscort
from domain.reasons import Reason

WINDOW = 10.0


def controller(*codes: str) -> Any:
    doors = {c: DoorRuntime(code=c, hw=None, has_contact=False) for c in codes}  # type: ignore[arg-type]
    return SimpleNamespace(doors=doors, escort_index=EscortIndex())


def grant(ctl: Any, door: str, person_id: int, direction: str, at: float) -> RecentEscort:
    person = PersonFacts(person_id, "staff", f"p{person_id}", True, True, None)
    recent = RecentEscort(
        CardFacts(None, person), Decision(Outcome.GRANT, Reason.GRANTED), direction, at, 1
    )
    escorts.staff_crossed(ctl, person_id, direction)
    escorts.remember_grant(ctl, ctl.doors[door], recent)
    return recent


def held(ctl: Any, door: str) -> list[tuple[int, str]]:
    """The grants at the door that may still escort someone."""
    return [(r.card.person.id, r.direction) for r in ctl.doors[door].recent_escorts if not r.ended]


def indexed(ctl: Any, person_id: int) -> list[tuple[str, float]]:
    return [(r.direction, r.at) for r in ctl.escort_index.grants(person_id)]


def test_a_grant_out_ends_the_persons_grants_in_at_every_door_and_no_one_elses() -> None:
    ctl = controller("a", "b", "c")
    grant(ctl, "a", 1, "in", 0.0)
    grant(ctl, "b", 1, "in", 1.0)
    grant(ctl, "a", 2, "in", 2.0)
    grant(ctl, "c", 1, "out", 3.0)
    assert held(ctl, "a") == [(2, "in")]
    assert held(ctl, "b") == []
    assert held(ctl, "c") == [(1, "out")]
    assert indexed(ctl, 1) == [("out", 3.0)]


def test_grants_in_the_same_direction_stay() -> None:
    ctl = controller("a", "b")
    grant(ctl, "a", 1, "in", 0.0)
    grant(ctl, "b", 1, "in", 1.0)
    assert held(ctl, "a") == [(1, "in")]
    assert indexed(ctl, 1) == [("in", 0.0), ("in", 1.0)]


def test_grants_past_the_window_are_forgotten_by_the_doors_and_the_index() -> None:
    ctl = controller("a", "b")
    for i in range(1_000):
        grant(ctl, "ab"[i % 2], i, "in", i * 0.01)
    escorts.forget_old_grants(ctl, ctl.doors["a"], 9.97 + WINDOW, WINDOW)
    assert [pid for pid, _ in held(ctl, "a")] == [998]  # only the grant within the window
    escorts.forget_old_grants(ctl, ctl.doors["b"], 100.0, WINDOW)
    assert held(ctl, "b") == []
    assert len(ctl.escort_index) == 1  # memory follows the grants in the window, not history
    escorts.forget_old_grants(ctl, ctl.doors["a"], 100.0, WINDOW)
    assert len(ctl.escort_index) == 0


def test_an_ended_grant_escorts_no_one_and_leaves_with_its_window() -> None:
    ctl = controller("a", "b")
    first_in = grant(ctl, "a", 1, "in", 0.0)
    out = grant(ctl, "b", 1, "out", 1.0)
    again_in = grant(ctl, "a", 1, "in", 2.0)
    visitor = CardFacts(None, PersonFacts(9, "visitor", "v", False, True, None))
    assert not escorts.usable_escort(first_in, visitor, "in", 2.5, WINDOW)
    assert not escorts.usable_escort(out, visitor, "out", 2.5, WINDOW)
    assert escorts.usable_escort(again_in, visitor, "in", 2.5, WINDOW)
    assert indexed(ctl, 1) == [("in", 2.0)]
    # the ended grants leave their doors with the window; the live one stays indexed
    escorts.forget_old_grants(ctl, ctl.doors["a"], 0.5 + WINDOW, WINDOW)
    escorts.forget_old_grants(ctl, ctl.doors["b"], 1.5 + WINDOW, WINDOW)
    assert [r.at for r in ctl.doors["a"].recent_escorts] == [2.0]
    assert list(ctl.doors["b"].recent_escorts) == []
    assert indexed(ctl, 1) == [("in", 2.0)]
    escorts.forget_old_grants(ctl, ctl.doors["a"], 2.5 + WINDOW, WINDOW)
    assert len(ctl.escort_index) == 0
