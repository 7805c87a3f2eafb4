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
        # (person, area or None for every area) forgiven by a guard: their next crossing
        # there is let through whatever the in/out record says. Kept in memory only.
        self._forgiven: set[tuple[int, int | None]] = set()

    def load(self, session: Session, areas: set[int] | None = None) -> None:
        """Who is inside, from the database: in ``areas`` only (a controller's own areas,
        those with at least one of its doors; None: every area). Another controller's areas
        are not this one's to decide, and a site with many controllers would otherwise load
        everyone's presence into each of them."""
        self._areas.clear()
        q = select(PresenceRow, Person.kind).join(Person, Person.id == PresenceRow.person_id)
        if areas is not None:
            q = q.where(PresenceRow.area_id.in_(sorted(areas)))
        rows = session.execute(q)
        for row, kind in rows:
            self._areas.setdefault(row.area_id, {})[row.person_id] = Occupant(
                row.person_id,
                kind == PersonKind.VISITOR,
                row.entered_at,
                row.escort_person_id,
                row.visit_id,
            )

    def inside(self, person_id: int, area_id: int) -> bool:
        return person_id in self._areas.get(area_id, {})

    def occupants(self, area_id: int) -> list[Occupant]:
        return list(self._areas.get(area_id, {}).values())

    def visitors_escorted_by(self, escort_id: int, area_id: int) -> list[Occupant]:
        return [o for o in self.occupants(area_id) if o.visitor and o.escort_person_id == escort_id]

    def staff_count(self, area_id: int) -> int:
        return sum(1 for o in self.occupants(area_id) if not o.visitor)

    def enter(self, area_id: int, occupant: Occupant) -> None:
        """Memory only: the caller writes the presence row in its work (controller.recorder)."""
        self._areas.setdefault(area_id, {})[occupant.person_id] = occupant

    def leave(self, area_id: int, person_id: int) -> Occupant | None:
        return self._areas.get(area_id, {}).pop(person_id, None)

    def replace_person(
        self, person_id: int, areas: dict[int, Occupant], scope: set[int] | None = None
    ) -> None:
        """Set where a person is to ``areas`` (what the database says: another controller
        moved them, controller.sharing), within the areas of ``scope`` (None: all)."""
        for aid, people in self._areas.items():
            if aid not in areas and (scope is None or aid in scope):
                people.pop(person_id, None)
        for aid, occupant in areas.items():
            self._areas.setdefault(aid, {})[person_id] = occupant

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
        for aid, people in self._areas.items():
            if (area_id is None or aid == area_id) and people.pop(person_id, None) is not None:
                cleared += 1
        return cleared
