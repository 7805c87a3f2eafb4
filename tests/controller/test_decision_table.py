"""Every reason code the pure decision can give, each from one row of a table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.decision import (
    Outcome,
    Presence,
    decide,
    within_schedule,
)
from controller.facts import (
    AreaPolicy,
    AuthorizationFacts,
    CardFacts,
    CredentialFacts,
    DoorPolicy,
    PersonFacts,
    VisitFacts,
)
from db.models import Direction
from domain.reasons import REASON_TEXT, Reason
from domain.training import add_months, training_current

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # Thursday 12:00 in Tokyo
HOUR = timedelta(hours=1)
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

AREA = AreaPolicy(1, "server-room", "enforce", "any", True, 3, False, ("laptop",))
DOOR = DoorPolicy(1, "d", AREA, 5.0, 30.0, False, 10.0, 10.0, False, False, None, TOKYO)
CRED = CredentialFacts(1, "felica", "01", "active", None, None, None, 0, False)
STAFF = PersonFacts(1, "staff", "Staff", True, True, date(2026, 6, 1))
AUTH = AuthorizationFacts(1, None, None, None, "maintenance")
VISITOR = PersonFacts(2, "visitor", "Visitor", True, False, None)
VISIT = VisitFacts(1, 1, 1, "repair", NOW - HOUR, NOW + HOUR, ("laptop",), False)
OK_STAFF = CardFacts(CRED, STAFF, (AUTH,))
OK_VISITOR = CardFacts(replace(CRED, temporary=True), VISITOR, (), VISIT)

ROWS: list[tuple[str, CardFacts, DoorPolicy, Direction, bool, Outcome, Reason]] = [
    ("staff ok", OK_STAFF, DOOR, Direction.IN, False, Outcome.GRANT, Reason.GRANTED),
    (
        "unknown",
        CardFacts(None, None),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.UNKNOWN_CARD,
    ),
    (
        "inactive",
        replace(OK_STAFF, credential=replace(CRED, state="inactive")),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_INACTIVE,
    ),
    (
        "returned badge",
        replace(OK_STAFF, credential=replace(CRED, state="returned")),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_INACTIVE,
    ),
    (
        "card of nobody",
        CardFacts(CRED, None),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_INACTIVE,
    ),
    (
        "lost",
        replace(OK_STAFF, credential=replace(CRED, state="lost")),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_LOST,
    ),
    (
        "blocked",
        replace(OK_STAFF, credential=replace(CRED, state="blocked")),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_LOST,
    ),
    (
        "locked",
        replace(OK_STAFF, credential=replace(CRED, state="locked")),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_LOCKED,
    ),
    (
        "card not yet",
        replace(OK_STAFF, credential=replace(CRED, valid_from=NOW + HOUR)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_NOT_YET_VALID,
    ),
    (
        "card expired",
        replace(OK_STAFF, credential=replace(CRED, valid_until=NOW)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.CREDENTIAL_EXPIRED,
    ),
    (
        "person inactive",
        replace(OK_STAFF, person=replace(STAFF, active=False)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.PERSON_INACTIVE,
    ),
    (
        "not designated",
        replace(OK_STAFF, person=replace(STAFF, designated=False)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.NOT_DESIGNATED,
    ),
    (
        "no training",
        replace(OK_STAFF, person=replace(STAFF, last_training_on=None)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.TRAINING_MISSING,
    ),
    (
        "13-month training",
        replace(OK_STAFF, person=replace(STAFF, last_training_on=date(2025, 10, 26))),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.TRAINING_EXPIRED,
    ),
    (
        "no authorization",
        replace(OK_STAFF, authorizations=()),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.NO_AUTHORIZATION,
    ),
    (
        "auth not yet",
        replace(OK_STAFF, authorizations=(replace(AUTH, valid_from=NOW + HOUR),)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.AUTHORIZATION_NOT_YET_VALID,
    ),
    (
        "auth expired",
        replace(OK_STAFF, authorizations=(replace(AUTH, valid_until=NOW - HOUR),)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.AUTHORIZATION_EXPIRED,
    ),
    (
        "outside schedule",
        replace(OK_STAFF, authorizations=(replace(AUTH, schedule={"thu": [["13:00", "18:00"]]}),)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.OUTSIDE_SCHEDULE,
    ),
    (
        "inside schedule",
        replace(OK_STAFF, authorizations=(replace(AUTH, schedule={"thu": [["09:00", "18:00"]]}),)),
        DOOR,
        Direction.IN,
        False,
        Outcome.GRANT,
        Reason.GRANTED,
    ),
    ("antipassback enforce", OK_STAFF, DOOR, Direction.IN, True, Outcome.DENY, Reason.ANTIPASSBACK),
    ("antipassback exit", OK_STAFF, DOOR, Direction.OUT, False, Outcome.DENY, Reason.ANTIPASSBACK),
    (
        "antipassback alert",
        OK_STAFF,
        replace(DOOR, area=replace(AREA, antipassback="alert")),
        Direction.IN,
        True,
        Outcome.GRANT,
        Reason.GRANTED_ANTIPASSBACK_WARNING,
    ),
    (
        "antipassback off",
        OK_STAFF,
        replace(DOOR, area=replace(AREA, antipassback="off")),
        Direction.IN,
        True,
        Outcome.GRANT,
        Reason.GRANTED,
    ),
    ("exit", OK_STAFF, DOOR, Direction.OUT, True, Outcome.GRANT, Reason.EXIT),
    (
        "exit without training still leaves",
        replace(OK_STAFF, person=replace(STAFF, last_training_on=None)),
        DOOR,
        Direction.OUT,
        True,
        Outcome.GRANT,
        Reason.EXIT,
    ),
    (
        "pin wanted",
        replace(OK_STAFF, credential=replace(CRED, pin_hash="$argon2id$x")),
        replace(DOOR, pin_required=True),
        Direction.IN,
        False,
        Outcome.NEED_PIN,
        Reason.PIN_WANTED,
    ),
    (
        "pin not set",
        OK_STAFF,
        replace(DOOR, pin_required=True),
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.PIN_NOT_SET,
    ),
    (
        "visitor waits for escort",
        OK_VISITOR,
        DOOR,
        Direction.IN,
        False,
        Outcome.NEED_ESCORT,
        Reason.ESCORT_WANTED,
    ),
    (
        "visitor exit waits for escort",
        OK_VISITOR,
        DOOR,
        Direction.OUT,
        True,
        Outcome.NEED_ESCORT,
        Reason.ESCORT_WANTED,
    ),
    (
        "visitor exit alone where allowed",
        OK_VISITOR,
        replace(DOOR, area=replace(AREA, visitor_exit_needs_escort=False)),
        Direction.OUT,
        True,
        Outcome.GRANT,
        Reason.EXIT,
    ),
    (
        "no visit",
        replace(OK_VISITOR, visit=None),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.NO_ACTIVE_VISIT,
    ),
    (
        "signed out",
        replace(OK_VISITOR, visit=replace(VISIT, signed_out=True)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.NO_ACTIVE_VISIT,
    ),
    (
        "visit later",
        replace(OK_VISITOR, visit=replace(VISIT, expected_from=NOW + HOUR)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.VISIT_NOT_STARTED,
    ),
    (
        "visit over",
        replace(OK_VISITOR, visit=replace(VISIT, expected_until=NOW)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.VISIT_EXPIRED,
    ),
    (
        "visit elsewhere",
        replace(OK_VISITOR, visit=replace(VISIT, area_id=2)),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.VISIT_WRONG_AREA,
    ),
    (
        "usb stick",
        replace(OK_VISITOR, visit=replace(VISIT, device_kinds=("laptop", "usb-stick"))),
        DOOR,
        Direction.IN,
        False,
        Outcome.DENY,
        Reason.DEVICE_NOT_PERMITTED,
    ),
]


@pytest.mark.parametrize(
    ("label", "card", "door", "direction", "inside", "outcome", "reason"),
    ROWS,
    ids=[r[0] for r in ROWS],
)
def test_decision_table(
    label: str,
    card: CardFacts,
    door: DoorPolicy,
    direction: Direction,
    inside: bool,
    outcome: Outcome,
    reason: Reason,
) -> None:
    decision = decide(card, door, direction, Presence(inside), NOW)
    assert (decision.outcome, decision.reason) == (outcome, reason)


def test_granted_entry_carries_the_authorization_purpose() -> None:
    assert decide(OK_STAFF, DOOR, Direction.IN, Presence(False), NOW).purpose == "maintenance"


# Reasons the daemon gives (door, PIN, escort and system flows), each covered end to end in
# test_controller_rules.py / test_controller_slice.py / test_controller_robustness.py.
DAEMON_REASONS = {
    Reason.GRANTED_ESCORTED,
    Reason.EXIT_BUTTON,
    Reason.SECOND_PERSON_WANTED,
    Reason.PURPOSE_WANTED,
    Reason.PURPOSE_INVALID,
    Reason.PURPOSE_TIMEOUT,
    Reason.PIN_WRONG,
    Reason.PIN_TIMEOUT,
    Reason.PIN_LOCKOUT,
    Reason.ESCORT_REQUIRED,
    Reason.ESCORT_NOT_ALLOWED,
    Reason.ESCORT_LIMIT,
    Reason.TWO_PERSON_TIMEOUT,
    Reason.NOT_USED,
    Reason.DOOR_OPENED,
    Reason.DOOR_CLOSED,
    Reason.DOOR_FORCED,
    Reason.DOOR_HELD,
    Reason.DOOR_HELD_RESTORED,
    Reason.TAMPER,
    Reason.TAMPER_RESTORED,
    Reason.READER_ONLINE,
    Reason.READER_OFFLINE,
    Reason.FORGIVEN,
    Reason.UNKNOWN_READER,
    Reason.SYSTEM_UNAVAILABLE,
    Reason.SNAPSHOT,
    Reason.TAILGATING,
    Reason.CAMERA_OFFLINE,
    Reason.GRANTED_CARD_PIN,
    Reason.GRANTED_CARD_PURPOSE,
    Reason.GRANTED_CARD_PIN_PURPOSE,
    Reason.DATABASE_UNAVAILABLE,
    Reason.DATABASE_RESTORED,
    # remote door control (controller.remote; tests/controller/test_remote_control.py)
    Reason.REMOTE_UNLOCK,
    Reason.LOCKDOWN,
    Reason.LOCKDOWN_STARTED,
    Reason.LOCKDOWN_LIFTED,
    Reason.DOOR_CLAIMED,  # a refused start-up (db.controllers), never a door decision
}


def test_every_reason_is_in_the_table_or_the_daemon_list_and_has_text() -> None:
    in_table = {r[6] for r in ROWS}
    assert set(Reason) == in_table | DAEMON_REASONS
    assert set(REASON_TEXT) == set(Reason)


def test_training_is_current_for_twelve_months() -> None:
    assert training_current(date(2025, 11, 26), date(2026, 11, 26))
    assert not training_current(date(2025, 11, 25), date(2026, 11, 26))
    assert add_months(date(2025, 2, 28), 12) == date(2026, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_schedule_is_in_tokyo_time() -> None:
    # 03:00 UTC is 12:00 in Tokyo on Thursday
    assert within_schedule({"thu": [["11:00", "13:00"]]}, NOW, TOKYO)
    assert not within_schedule({"thu": [["02:00", "04:00"]]}, NOW, TOKYO)
    assert not within_schedule({"wed": [["00:00", "24:00"]]}, NOW, TOKYO)


OFFICE_HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
SCHEDULED = CardFacts(CRED, STAFF, (replace(AUTH, schedule=OFFICE_HOURS),))


@pytest.mark.parametrize(
    ("instant", "tokyo", "new_york"),
    [
        # Thu 2026-11-26 14:30 UTC: 09:30 EST Thursday, 23:30 JST Thursday
        (datetime(2026, 11, 26, 14, 30, tzinfo=UTC), Reason.OUTSIDE_SCHEDULE, Reason.GRANTED),
        # Thu 01:00 UTC: 10:00 JST Thursday, 20:00 EST Wednesday
        (datetime(2026, 11, 26, 1, 0, tzinfo=UTC), Reason.GRANTED, Reason.OUTSIDE_SCHEDULE),
        # summer: 13:30 UTC is 09:30 EDT (a fixed -05:00 would make it 08:30, before hours)
        (datetime(2026, 7, 2, 13, 30, tzinfo=UTC), Reason.OUTSIDE_SCHEDULE, Reason.GRANTED),
        # 16:30 EST Friday is Saturday 06:30 in Tokyo: the weekday is the local one too
        (datetime(2026, 11, 27, 21, 30, tzinfo=UTC), Reason.OUTSIDE_SCHEDULE, Reason.GRANTED),
        # 17:30 EST Friday: after hours in New York
        (
            datetime(2026, 11, 27, 22, 30, tzinfo=UTC),
            Reason.OUTSIDE_SCHEDULE,
            Reason.OUTSIDE_SCHEDULE,
        ),
    ],
)
def test_the_door_reads_the_schedule_in_the_site_zone(
    instant: datetime, tokyo: Reason, new_york: Reason
) -> None:
    """The same authorization and instant, decided at a Tokyo site and a New York site."""
    at_tokyo = decide(SCHEDULED, DOOR, Direction.IN, Presence(False), instant)
    at_new_york = decide(
        SCHEDULED, replace(DOOR, zone=NEW_YORK), Direction.IN, Presence(False), instant
    )
    assert (at_tokyo.reason, at_new_york.reason) == (tokyo, new_york)


def test_training_days_are_the_site_zone_calendar_days() -> None:
    # trained 2025-11-25: valid through 2026-11-25 (site calendar). 2026-11-25 20:00 UTC is
    # already the 26th in Tokyo, still the 25th in London.
    card = CardFacts(CRED, replace(STAFF, last_training_on=date(2025, 11, 25)), (AUTH,))
    instant = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    assert decide(card, DOOR, Direction.IN, Presence(False), instant).reason == (
        Reason.TRAINING_EXPIRED
    )
    london = replace(DOOR, zone=LONDON)
    assert decide(card, london, Direction.IN, Presence(False), instant).reason == Reason.GRANTED
    later = instant + timedelta(hours=4)  # 00:00 on the 26th in London
    assert decide(card, london, Direction.IN, Presence(False), later).reason == (
        Reason.TRAINING_EXPIRED
    )


def test_forgiven_skips_antipassback_once_in_either_direction() -> None:
    assert (
        decide(OK_STAFF, DOOR, Direction.IN, Presence(True, forgiven=True), NOW).reason
        == Reason.GRANTED
    )
    assert (
        decide(OK_STAFF, DOOR, Direction.OUT, Presence(False, forgiven=True), NOW).reason
        == Reason.EXIT
    )
