"""Who is inside each managed area: owned by the controller thread, mirrored in ``presence``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Person, PersonKind
from db.models import Presence as PresenceRow


@dataclass(frozen=True, slots=True)
class Occupant:
    person_id: int
    visitor: bool
    entered_at: datetime
    escort_person_id: int | None = None
    visit_id: int | None = None


class Occupancy:
    """In-memory occupancy; every change is written in the caller's transaction."""

    def __init__(self) -> None:
        self._areas: dict[int, dict[int, Occupant]] = {}
        # the visitors among them, per area: an escort's exit and every two-person check ask
        # about visitors or staff, and an area may hold hundreds of staff
        self._visitors: dict[int, dict[int, Occupant]] = {}
        # (person, area or None for every area) forgiven by a guard: their next crossing
        # there is let through whatever the in/out record says. Kept in memory only.
        self._forgiven: set[tuple[int, int | None]] = set()

    def load(self, session: Session, areas: set[int] | None = None) -> None:
        """Who is inside, from the database: in ``areas`` only (a controller's own areas,
        those with at least one of its doors; None: every area). Another controller's areas
        are not this one's to decide, and a site with many controllers would otherwise load
        everyone's presence into each of them."""
        self._areas.clear()
        self._visitors.clear()
        q = select(PresenceRow, Person.kind).join(Person, Person.id == PresenceRow.person_id)
        if areas is not None:
            q = q.where(PresenceRow.area_id.in_(sorted(areas)))
        rows = session.execute(q)
        for row, kind in rows:
            self._put(
                row.area_id,
                Occupant(
                    row.person_id,
                    kind == PersonKind.VISITOR,
                    row.entered_at,
                    row.escort_person_id,
                    row.visit_id,
                ),
            )

    def _put(self, area_id: int, occupant: Occupant) -> None:
        pid = occupant.person_id
        self._areas.setdefault(area_id, {})[pid] = occupant
        if occupant.visitor:
            self._visitors.setdefault(area_id, {})[pid] = occupant
        else:  # a person's kind does not change, but the two maps must never disagree
            self._visitors.get(area_id, {}).pop(pid, None)

    def _drop(self, area_id: int, person_id: int) -> Occupant | None:
        self._visitors.get(area_id, {}).pop(person_id, None)
        return self._areas.get(area_id, {}).pop(person_id, None)

    def inside(self, person_id: int, area_id: int) -> bool:
        return person_id in self._areas.get(area_id, {})

    def occupants(self, area_id: int) -> list[Occupant]:
        return list(self._areas.get(area_id, {}).values())

    def visitors_escorted_by(self, escort_id: int, area_id: int) -> list[Occupant]:
        visitors = self._visitors.get(area_id, {}).values()
        return [o for o in visitors if o.escort_person_id == escort_id]

    def staff_count(self, area_id: int) -> int:
        return len(self._areas.get(area_id, {})) - len(self._visitors.get(area_id, {}))

    def enter(self, area_id: int, occupant: Occupant) -> None:
        """Memory only: the caller writes the presence row in its work (controller.recorder)."""
        self._put(area_id, occupant)

    def leave(self, area_id: int, person_id: int) -> Occupant | None:
        return self._drop(area_id, person_id)

    def replace_person(
        self, person_id: int, areas: dict[int, Occupant], scope: set[int] | None = None
    ) -> None:
        """Set where a person is to ``areas`` (what the database says: another controller
        moved them, controller.sharing), within the areas of ``scope`` (None: all)."""
        for aid in list(self._areas):
            if aid not in areas and (scope is None or aid in scope):
                self._drop(aid, person_id)
        for aid, occupant in areas.items():
            self._put(aid, occupant)

    def is_forgiven(self, person_id: int, area_id: int) -> bool:
        return (person_id, area_id) in self._forgiven or (person_id, None) in self._forgiven

    def crossed(self, person_id: int, area_id: int) -> None:
        """A granted crossing uses up the forgiveness for that area."""
        self._forgiven.discard((person_id, area_id))
        self._forgiven.discard((person_id, None))

    def forgive(self, person_id: int, area_id: int | None) -> int:
        """Clear a person's in/out state (anti-passback reset); returns areas cleared.

        The next crossing (in or out) is let through once: the record was wrong, so
        neither direction can be trusted until the person has crossed again.
        """
        self._forgiven.add((person_id, area_id))
        cleared = 0
        for aid in list(self._areas):
            if (area_id is None or aid == area_id) and self._drop(aid, person_id) is not None:
                cleared += 1
        return cleared
