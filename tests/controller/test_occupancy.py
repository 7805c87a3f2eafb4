"""The controller's in-memory occupancy keeps its visitors apart (controller.occupancy): the
staff count and an escort's visitors are answered from that index, so it must agree with the
occupants themselves after any sequence of entries, exits, forgives and feed replacements."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from controller.occupancy import Occupancy, Occupant

T0 = datetime(2026, 12, 1, tzinfo=UTC)
STAFF = range(1, 9)
VISITORS = range(100, 106)
AREAS = (1, 2, 3)


def _occupant(rng: random.Random, person: int) -> Occupant:
    visitor = person in VISITORS
    return Occupant(person, visitor, T0, rng.choice(STAFF) if visitor else None)


def _check(occ: Occupancy) -> None:
    for area in AREAS:
        inside = occ.occupants(area)
        assert occ.staff_count(area) == sum(1 for o in inside if not o.visitor)
        for escort in STAFF:
            want = sorted(o.person_id for o in inside if o.visitor and o.escort_person_id == escort)
            got = sorted(o.person_id for o in occ.visitors_escorted_by(escort, area))
            assert got == want, (area, escort)


def test_staff_count_and_escorted_visitors_agree_with_the_occupants() -> None:
    rng = random.Random(11)
    occ = Occupancy()
    people = [*STAFF, *VISITORS]
    for _ in range(3_000):
        person, area, roll = rng.choice(people), rng.choice(AREAS), rng.random()
        if roll < 0.45:
            occ.enter(area, _occupant(rng, person))
        elif roll < 0.8:
            occ.leave(area, person)
        elif roll < 0.9:
            occ.forgive(person, rng.choice([area, None]))
        else:  # another controller moved them (the change feed)
            where = {a: _occupant(rng, person) for a in rng.sample(AREAS, rng.randint(0, 2))}
            occ.replace_person(person, where, scope=rng.choice([None, {area}]))
        _check(occ)
    assert any(occ.visitors_escorted_by(e, a) for e in STAFF for a in AREAS)
    assert any(occ.staff_count(a) for a in AREAS)


def test_an_escort_leaving_counts_their_visitors_only() -> None:
    occ = Occupancy()
    occ.enter(1, Occupant(1, False, T0))
    occ.enter(1, Occupant(2, False, T0))
    occ.enter(1, Occupant(100, True, T0, escort_person_id=1))
    occ.enter(1, Occupant(101, True, T0, escort_person_id=2))
    assert occ.staff_count(1) == 2
    assert [o.person_id for o in occ.visitors_escorted_by(1, 1)] == [100]
    occ.leave(1, 100)
    assert occ.visitors_escorted_by(1, 1) == []
    assert occ.staff_count(1) == 2
    assert occ.forgive(101, None) == 1
    assert occ.visitors_escorted_by(2, 1) == [] and occ.staff_count(1) == 2
