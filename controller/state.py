"""The controller's messages and the per-door state its loop thread owns."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from controller.decision import Decision
from controller.facts import CardFacts, DoorPolicy
from hardware import HardwareEvent
from hardware.door import DoorHardware
from hardware.tailgating import TailgateResult
from readers import CardPresented, KeypadInput, ReaderOffline, ReaderOnline, ReaderTamper


@dataclass(frozen=True, slots=True)
class Stop:
    pass


class Wake:
    """Wakes the loop to run after-commit callbacks (they wait in their own lane)."""


WAKE = Wake()


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    online: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Call:
    """Run a function on the controller thread (tests and in-process tools)."""

    fn: Callable[[], None]


@dataclass(frozen=True, slots=True)
class PinChecked:
    """The argon2 worker's answer for a door's PIN wait (controller.keypad)."""

    door: str
    token: int
    result: str  # domain.pins.check_pin: "ok", "duress" or "wrong"


class Result(TypedDict, total=False):
    """What handling one input came to (commands store it; tests read it)."""

    decision: str | None
    reason: str
    event_id: int
    enrolled: str
    ignored: str
    # remote door control (controller.remote)
    door: str
    area: str
    seconds: float
    already: bool


Message = (
    CardPresented
    | KeypadInput
    | ReaderOnline
    | ReaderOffline
    | ReaderTamper
    | HardwareEvent
    | CameraStatus
    | TailgateResult
    | Stop
    | Wake
    | Call
    | PinChecked
)


@dataclass
class Passage:
    """A granted crossing that becomes occupancy only when the door is seen to open."""

    person_id: int
    area_id: int
    direction: str
    event_id: int
    visitor: bool
    escort_person_id: int | None = None
    visit_id: int | None = None


@dataclass
class PinWait:
    card: CardFacts
    decision: Decision
    reader: str
    direction: str
    deadline: float
    keys: str = field(default="", repr=False)
    purpose: bool = False  # waiting for a purpose code (用件) rather than a PIN
    checking: int = 0  # token of the PIN check running in the worker; 0: none
    pin_given: bool = False  # the PIN was right: a purpose wait after it names both factors
    command_id: int | None = None  # a keys command answered when the PIN check is done


@dataclass
class EscortWait:
    """A visitor who presented and waits for an escort at the same door."""

    card: CardFacts
    decision: Decision
    reader: str
    direction: str
    since: float
    event_id: int
    refused_by: int | None = None  # a staff member granted here who may not escort this visitor


@dataclass
class RecentEscort:
    """A staff member granted at this door who may still escort a visitor presenting next."""

    card: CardFacts
    decision: Decision
    direction: str
    at: float
    event_id: int
    # visitors admitted on this grant: one grant lets each visitor of its crossing through once
    admitted: set[int] = field(default_factory=set)
    # the person was granted the other way since (at any door): this grant escorts no one
    ended: bool = False


class EscortIndex:
    """Each person's recent staff grants that may still escort (not ended, within their
    door's window): a grant in one direction ends the person's grants in the other at every
    door, and in a burst the doors hold thousands of grants within their escort windows; the
    index finds the person's few without reading the doors' lists."""

    def __init__(self) -> None:
        self._grants: dict[int, list[RecentEscort]] = {}

    def add(self, person_id: int, recent: RecentEscort) -> None:
        self._grants.setdefault(person_id, []).append(recent)

    def end_other_direction(self, person_id: int, direction: str) -> None:
        held = self._grants.get(person_id)
        if not held:
            return
        keep = []
        for r in held:
            if r.direction != direction:
                r.ended = True
            else:
                keep.append(r)
        if keep:
            self._grants[person_id] = keep
        else:
            del self._grants[person_id]

    def remove(self, person_id: int, recent: RecentEscort) -> None:
        """A grant past its window (an ended one has left the index already)."""
        held = self._grants.get(person_id)
        if held is None:
            return
        for i, r in enumerate(held):
            if r is recent:
                del held[i]
                break
        if not held:
            del self._grants[person_id]

    def grants(self, person_id: int) -> list[RecentEscort]:
        return list(self._grants.get(person_id, ()))

    def __len__(self) -> int:
        return len(self._grants)


@dataclass
class DoorRuntime:
    code: str
    hw: DoorHardware
    has_contact: bool
    released_until: float | None = None
    opened_during_release: bool = False
    open_since: float | None = None
    held_alarm_raised: bool = False
    passages: list[Passage] = field(default_factory=list)
    pin_wait: PinWait | None = None
    escort_waits: list[EscortWait] = field(default_factory=list)
    recent_escorts: deque[RecentEscort] = field(default_factory=deque)  # in time order
    policy: DoorPolicy | None = None  # last loaded; timers use it to avoid a query per tick
    first_of_two: EscortWait | None = None  # two-person rule: the first entrant waiting
    grants_at: list[float] = field(default_factory=list)  # recent entry grants (tailgating)
    watching_until: float = 0.0  # a tailgating watch covers grants until then
    # doors without a contact: grants of this input, applied together (visitors first)
    crossing: list[Passage] = field(default_factory=list)
