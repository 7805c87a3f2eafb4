"""The vertical slice through a simulated door: presentation -> event row -> relay -> occupancy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from db.engine import session_scope
from db.models import Event, Presence
from tests.controller.conftest import Site


def test_granted_entry_commits_the_row_before_the_strike_releases(site: Site) -> None:
    strike = site.io("sr-strike")
    seen_at_release: list[list[Any]] = []
    original_on = strike.on

    def on_with_check() -> None:
        # another session sees only committed rows
        with session_scope(site.sessions) as s:
            seen_at_release.append(list(s.execute(select(Event.decision, Event.reason)).all()))
        original_on()

    strike.on = on_with_check
    result = site.tap("sr-in", "yamada")
    assert result["decision"] == "granted"
    assert seen_at_release and ("granted", "granted") in seen_at_release[0]
    assert strike.is_active
    row = site.events(reason="granted")[0]
    assert row.direction == "in" and row.purpose and row.person_id is not None
    assert row.seq is not None and row.hash


def test_occupancy_changes_only_when_the_door_opens(site: Site) -> None:
    site.tap("sr-in", "yamada")
    with session_scope(site.sessions) as s:
        assert s.scalars(select(Presence)).all() == []
    site.io("sr-contact").drive(True)
    site.settle()
    with session_scope(site.sessions) as s:
        assert len(s.scalars(select(Presence)).all()) == 1
    site.io("sr-contact").drive(False)
    site.settle()
    assert not site.io("sr-strike").is_active  # relock on close
    # tap out at the exit reader: exit recorded, presence gone once the door opens
    assert site.tap("sr-out", "yamada")["reason"] == "exit"
    site.io("sr-contact").drive(True)
    site.io("sr-contact").drive(False)
    site.settle()
    with session_scope(site.sessions) as s:
        assert s.scalars(select(Presence)).all() == []


def test_expired_training_is_denied_and_the_strike_stays_locked(site: Site) -> None:
    result = site.tap("sr-in", "suzuki")
    assert result == {"decision": "denied", "reason": "training_expired"}
    assert site.io("sr-strike").history == [False]
    assert site.events(reason="training_expired")[0].decision == "denied"


def test_unknown_card_is_denied_and_its_raw_id_logged(site: Site) -> None:
    result = site.tap("sr-in", card="DEADBEEF00000001")
    assert result["reason"] == "unknown_card"
    row = site.events(reason="unknown_card")[0]
    assert row.raw_card_id == "DEADBEEF00000001" and row.person_id is None


def test_no_authorization_for_the_area(site: Site) -> None:
    # Sato is authorized for the server room only
    assert site.tap("mn-back-in", "sato")["reason"] == "no_authorization"


def test_stopping_the_controller_locks_every_strike(site: Site) -> None:
    site.tap("sr-in", "yamada")
    assert site.io("sr-strike").is_active
    site.ctl.stop()
    assert not any(o.is_active for o in site.backend.outputs.values())
