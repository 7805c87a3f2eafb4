"""Escort defects found when tried as a new user would, and the final reason of every path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from db.engine import session_scope
from db.models import Area, Presence
from domain.config import GpioSection
from nyutai.demo import DEMO_CARDS
from tests.controller.conftest import Site


def walk_through(site: Site, contact: str = "sr-contact") -> None:
    site.io(contact).drive(True)
    site.io(contact).drive(False)
    site.settle()


def inside(site: Site) -> set[int]:
    with session_scope(site.sessions) as s:
        return {p.person_id for p in s.scalars(select(Presence))}


def no_contact_site(site_factory: Callable[..., Site]) -> Site:
    """The server-room door without a door contact: a grant counts as the passage."""
    return site_factory(only="server-room-door", gpio=GpioSection(strike="sr-strike", rex="sr-rex"))


def test_visitor_and_escort_leaving_together_at_a_door_without_contact_raise_no_alarm(
    site_factory: Callable[..., Site],
) -> None:
    site = no_contact_site(site_factory)
    site.tap("sr-in", "visitor")
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    assert len(inside(site)) == 2
    site.settle(0.1)
    # leaving: the visitor presents first and waits, then the escort
    assert site.tap("sr-out", "visitor")["reason"] == "escort_wanted"
    assert site.tap("sr-out", "yamada")["decision"] == "granted"
    assert site.events(reason="granted_escorted", direction="out")
    assert inside(site) == set()
    assert site.alarms("escort_left_visitor") == []
    assert not site.io("siren").is_active


def test_an_escort_who_badged_out_cannot_admit_a_visitor_on_their_entry_grant(
    site: Site,
) -> None:
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    walk_through(site)
    assert site.tap("sr-out", "yamada")["decision"] == "granted"
    walk_through(site)
    # within the escort window of the entry grant, but Yamada has left
    assert site.tap("sr-in", "visitor")["reason"] == "escort_wanted"
    assert site.events(reason="granted_escorted") == []


def test_one_escort_grant_admits_the_same_visitor_once(site: Site) -> None:
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    assert site.tap("sr-in", "visitor")["reason"] == "granted_escorted"
    # the door was not opened, so the visitor is still outside and presents again
    assert site.tap("sr-in", "visitor")["reason"] == "escort_wanted"
    assert len(site.events(reason="granted_escorted")) == 1


# --- the final reason of every path to a grant ---------------------------------------------


def _card_only(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    site.tap("sr-in", "yamada")
    return site, "sr-in"


def _card_pin(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    assert site.tap("mn-front-in", "yamada")["reason"] == "pin_wanted"
    site.keys("mn-front-in", site.pin + "#")
    return site, "mn-front-in"


def _card_purpose(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    assert site.tap("mn-back-in", "yamada")["reason"] == "purpose_wanted"
    site.keys("mn-back-in", "3#")
    return site, "mn-back-in"


def _card_pin_purpose(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory(only="mynumber-back", pin_required=True)
    assert site.tap("mn-back-in", "yamada")["reason"] == "pin_wanted"
    site.keys("mn-back-in", site.pin + "#")  # right: now the purpose code is asked
    wait = site.ctl.doors["mynumber-back"].pin_wait
    assert wait is not None and wait.purpose
    site.keys("mn-back-in", "3#")
    return site, "mn-back-in"


def _escorted(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    site.tap("sr-in", "yamada")
    site.tap("sr-in", "visitor")
    return site, "sr-in"


def _exit(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    site.tap("sr-in", "yamada")
    walk_through(site)
    site.tap("sr-out", "yamada")
    return site, "sr-out"


def _antipassback_warning(site_factory: Callable[..., Site]) -> tuple[Site, str]:
    site = site_factory()
    with session_scope(site.sessions) as s:
        s.execute(update(Area).where(Area.code == "server-room").values(antipassback="alert"))
    site.tap("sr-out", "yamada")  # recorded outside, leaving: let through with a warning
    return site, "sr-out"


PATHS = [
    ("card", _card_only, "granted"),
    ("card + PIN", _card_pin, "granted_card_pin"),
    ("card + purpose", _card_purpose, "granted_card_purpose"),
    ("card + PIN + purpose", _card_pin_purpose, "granted_card_pin_purpose"),
    ("escorted visitor", _escorted, "granted_escorted"),
    ("exit", _exit, "exit"),
    ("anti-passback alert", _antipassback_warning, "granted_antipassback_warning"),
]


@pytest.mark.parametrize(("path", "run", "reason"), PATHS, ids=[p[0] for p in PATHS])
def test_the_final_reason_of_each_grant_path(
    site_factory: Callable[..., Site],
    path: str,
    run: Callable[[Callable[..., Site]], tuple[Site, str]],
    reason: str,
) -> None:
    site, reader = run(site_factory)
    rows = [e for e in site.events(reader=reader) if e.decision == "granted"]
    assert rows, path
    assert rows[-1].reason == reason
    # a grant never carries a reason that asks for more input
    assert all(e.reason not in ("pin_wanted", "purpose_wanted") for e in rows)


def test_a_pin_being_checked_holds_its_door_only(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 runs in a worker: while one door's PIN is being checked (held here until the
    test lets it go), another door decides, commits and opens."""
    import threading

    from controller import keypad

    gate = threading.Event()
    real = keypad.check_pin

    def slow_check(pin_hash: str, pin: str) -> str:
        gate.wait(10)
        return real(pin_hash, pin)

    monkeypatch.setattr(keypad, "check_pin", slow_check)
    assert site.tap("mn-front-in", "yamada")["reason"] == "pin_wanted"
    import time

    from readers.events import KeypadInput
    from tests.controller.conftest import _card

    ctl = site.ctl
    ctl.queue.put(KeypadInput("mn-front-in", site.pin + "#", time.monotonic()))
    box: list[object] = []
    done = threading.Event()

    def tap_sato() -> None:
        box.append(ctl.on_card(_card("sr-in", *DEMO_CARDS["sato"])))
        done.set()

    from controller.state import Call

    ctl.queue.put(Call(tap_sato))  # another door, while the PIN is being checked
    assert done.wait(10)
    assert ctl.pin_checks  # still checking
    assert box[0]["decision"] == "granted"  # type: ignore[index]
    deadline = time.monotonic() + 10
    while not site.io("sr-strike").is_active:  # committed and released meanwhile
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not site.io("mnf-strike").is_active and site.ctl.pin_checks
    gate.set()
    site.settle()
    assert site.io("mnf-strike").is_active
    assert site.events(reason="granted_card_pin")
