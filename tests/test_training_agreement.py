"""The door, the console's escort list and the access review agree on training validity.

One rule (domain.training): a training counts through the same date a year later. Each row
puts a designated, authorized staff member with one training date into the database, then
asks the three parts on the same day; they must all say "valid" or all say "expired".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controller.decision import Presence, decide
from controller.facts import load_card, load_door
from db.models import Area, Authorization, Credential, Direction, Door, Person, Training
from db.review import TRAINING_EXPIRED, review_items
from domain.reasons import Reason
from web.eligibility import eligible_escorts, may_escort

TOKYO = ZoneInfo("Asia/Tokyo")

# (completed on, asked on, valid?)
DATES = [
    (date(2025, 4, 10), date(2026, 4, 9), True),  # the day before the anniversary
    (date(2025, 4, 10), date(2026, 4, 10), True),  # the anniversary itself
    (date(2025, 4, 10), date(2026, 4, 11), False),  # the day after
    (date(2024, 2, 29), date(2025, 2, 27), True),  # trained on 29 February ...
    (date(2024, 2, 29), date(2025, 2, 28), True),  # ... valid through 28 February
    (date(2024, 2, 29), date(2025, 3, 1), False),
    (date(2023, 3, 1), date(2024, 2, 29), True),  # asked on 29 February
    (date(2023, 2, 28), date(2024, 2, 29), False),
    (date(2025, 1, 31), date(2026, 1, 31), True),
    (date(2025, 1, 31), date(2026, 2, 1), False),
]


@pytest.mark.parametrize(("completed", "today", "valid"), DATES)
def test_door_escort_list_and_review_agree(
    session_factory: sessionmaker[Session], completed: date, today: date, valid: bool
) -> None:
    now = datetime.combine(today, time(12, 0), TOKYO).astimezone(UTC)
    with session_factory() as s:
        area = Area(code="sr", name="サーバ室")
        s.add(area)
        s.flush()
        s.add(Door(code="sr-door", name="サーバ室扉", area_id=area.id, entry_reader="sr-in"))
        person = Person(name="伊藤 誠", designated=True)
        s.add(person)
        s.flush()
        s.add(Credential(person_id=person.id, technology="felica", card_id="0102030405060708"))
        s.add(Training(person_id=person.id, course="年次研修", completed_on=completed))
        s.add(Authorization(person_id=person.id, area_id=area.id, state="approved"))
        s.commit()

        door = load_door(s, "sr-door", TOKYO)
        assert door is not None
        card = load_card(s, "felica", "0102030405060708", area.id)
        decision = decide(card, door, Direction.IN, Presence(), now)
        door_says = decision.granted
        if not valid:
            assert decision.reason == Reason.TRAINING_EXPIRED

        escort_list_says = person.id in {p.id for p in eligible_escorts(s, area.id, now, today)}
        assert may_escort(s, area.id, person.id, now, today) is escort_list_says

        review_says = not any(
            i.finding == TRAINING_EXPIRED and i.person_id == person.id
            for i in review_items(s, now, zone=TOKYO)
        )

    assert (door_says, escort_list_says, review_says) == (valid, valid, valid)
