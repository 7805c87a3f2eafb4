"""Section 4 rules end to end through simulated doors; each fails if its rule is removed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update

from db.engine import session_scope
from db.models import Authorization, Credential, Person, Presence, Training
from nyutai.demo import DEMO_CARDS
from tests.controller.conftest import Site


def walk_through(site: Site, contact: str = "sr-contact") -> None:
    site.io(contact).drive(True)
    site.io(contact).drive(False)
    site.settle()


def inside(site: Site) -> set[int]:
    with session_scope(site.sessions) as s:
        return {p.person_id for p in s.scalars(select(Presence))}


# --- anti-passback ---------------------------------------------------------------------


def test_antipassback_denies_a_second_entry_until_forgiven(site: Site) -> None:
    site.tap("sr-in", "yamada")
    walk_through(site)
    assert site.tap("sr-in", "yamada")["reason"] == "antipassback"
    person_id = site.events(reason="granted")[0].person_id
    site.call(lambda: site.ctl.commands._execute(0, "forgive", {"person_id": person_id}, None))
    assert site.events(reason="forgiven")
    assert site.tap("sr-in", "yamada")["decision"] == "granted"


def test_forgiving_lets_a_wrongly_recorded_exit_through_once(site: Site) -> None:
    # Yamada is inside but never badged in (tailgated a colleague): the exit is refused
    assert site.tap("sr-out", "yamada")["reason"] == "antipassback"
    person_id = site.events(reason="antipassback")[0].person_id
    site.call(lambda: site.ctl.commands._execute(0, "forgive", {"person_id": person_id}, None))
    assert site.tap("sr-out", "yamada")["reason"] == "exit"
    walk_through(site)
    # used up by the crossing: the record is trusted again
    assert site.tap("sr-out", "yamada")["reason"] == "antipassback"


def test_a_grant_whose_door_never_opened_is_not_used_and_no_entry(
    site_factory: Callable[..., Site],
) -> None:
    site = site_factory(strike_seconds=0.2)
    site.tap("sr-in", "yamada")
    site.settle(0.4)
    assert site.events(reason="not_used")
    assert not site.io("sr-strike").is_active
    assert inside(site) == set()
    # no phantom entry: the same person may still enter
    assert site.tap("sr-in", "yamada")["decision"] == "granted"


# --- escorts (立会い) ---------------------------------------------------------------------


def test_visitor_alone_is_denied_escort_required(site_factory: Callable[..., Site]) -> None:
    site = site_factory(escort_window_seconds=0.2)
    assert site.tap("sr-in", "visitor")["reason"] == "escort_wanted"
    assert not site.io("sr-strike").is_active
    site.settle(0.4)
    final = site.events(reason="escort_required")
    assert final and final[0].decision == "denied" and final[0].visitor


def test_visitor_then_escort_are_both_granted_and_linked(site: Site) -> None:
    site.tap("sr-in", "visitor")
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    escorted = site.events(reason="granted_escorted")
    assert len(escorted) == 1
    staff = site.events(reason="granted")[0]
    assert escorted[0].escort_person_id == staff.person_id
    assert escorted[0].escort_event_id == staff.id
    assert escorted[0].purpose and "保守" in escorted[0].purpose  # the visit's purpose
    walk_through(site)
    assert len(inside(site)) == 2


def test_escort_then_visitor_in_either_order(site: Site) -> None:
    site.tap("sr-in", "yamada")
    assert site.tap("sr-in", "visitor")["reason"] == "granted_escorted"


def test_escort_leaving_before_their_visitor_raises_an_alarm(site: Site) -> None:
    site.tap("sr-in", "visitor")
    site.tap("sr-in", "yamada")
    walk_through(site)
    site.tap("sr-out", "yamada")
    walk_through(site)
    alarms = site.alarms("escort_left_visitor")
    assert len(alarms) == 1
    assert site.io("siren").is_active


def test_visitor_exit_needs_the_escort_too(site: Site) -> None:
    site.tap("sr-in", "visitor")
    site.tap("sr-in", "yamada")
    walk_through(site)
    assert site.tap("sr-out", "visitor")["reason"] == "escort_wanted"
    site.tap("sr-out", "yamada")
    assert site.events(reason="granted_escorted", direction="out")
    walk_through(site)
    assert inside(site) == set()
    assert site.alarms("escort_left_visitor") == []


def test_named_escort_policy_refuses_other_staff(site: Site) -> None:
    # the My Number room's policy is 'named': only the visit's escort (Yamada) may escort
    with session_scope(site.sessions) as s:
        from db.models import Area, Visit

        room = s.scalar(select(Area).where(Area.code == "mynumber-room"))
        assert room is not None
        s.execute(update(Visit).values(area_id=room.id, declared_devices=[]))
    site.tap("mn-back-in", "visitor")
    site.tap("mn-back-in", "suzuki")  # denied himself (training expired): cannot escort
    assert site.events(reason="granted_escorted") == []


# --- devices (4(5)) --------------------------------------------------------------------


def test_visitor_declaring_a_forbidden_device_is_refused(site: Site) -> None:
    with session_scope(site.sessions) as s:
        from db.models import Visit

        s.execute(update(Visit).values(declared_devices=[{"kind": "usb-stick", "serial": "X"}]))
    assert site.tap("sr-in", "visitor")["reason"] == "device_not_permitted"


# --- PIN (4(3)) ------------------------------------------------------------------------


def test_card_and_pin(site: Site) -> None:
    assert site.tap("mn-front-in", "yamada")["reason"] == "pin_wanted"
    assert not site.io("mnf-strike").is_active
    assert site.keys("mn-front-in", site.pin + "#")["decision"] == "granted"
    assert site.io("mnf-strike").is_active
    # the PIN is nowhere in the event rows
    for ev in site.events():
        assert site.pin not in repr(ev.detail) and site.pin not in (ev.raw_card_id or "")


def test_five_wrong_pins_lock_the_card_and_raise_an_alarm(site: Site) -> None:
    wrong = "".join(str((int(c) + 5) % 10) for c in site.pin)
    for attempt in range(5):
        site.tap("mn-front-in", "yamada")
        result = site.keys("mn-front-in", wrong + "#")
        assert result["reason"] == ("pin_lockout" if attempt == 4 else "pin_wrong")
    assert len(site.alarms("pin_lockout")) == 1
    with session_scope(site.sessions) as s:
        cred = s.scalar(select(Credential).where(Credential.card_id == DEMO_CARDS["yamada"][1]))
        assert cred is not None and cred.state == "locked"
    # the right PIN afterwards is still refused
    assert site.tap("mn-front-in", "yamada")["reason"] == "credential_locked"


def test_a_right_pin_resets_the_wrong_pin_counter(site: Site) -> None:
    wrong = "".join(str((int(c) + 5) % 10) for c in site.pin)
    for _ in range(4):
        site.tap("mn-front-in", "yamada")
        site.keys("mn-front-in", wrong + "#")
    site.tap("mn-front-in", "yamada")
    assert site.keys("mn-front-in", site.pin + "#")["decision"] == "granted"
    with session_scope(site.sessions) as s:
        cred = s.scalar(select(Credential).where(Credential.card_id == DEMO_CARDS["yamada"][1]))
        assert cred is not None and cred.failed_pin_count == 0


def test_duress_pin_opens_and_raises_a_silent_alarm(site: Site) -> None:
    duress = site.pin[:-1] + str((int(site.pin[-1]) + 1) % 10)
    site.tap("mn-front-in", "yamada")
    assert site.keys("mn-front-in", duress + "#")["decision"] == "granted"
    assert site.io("mnf-strike").is_active
    alarms = site.alarms("duress")
    assert len(alarms) == 1 and alarms[0].silent
    assert not site.io("siren").is_active  # silent: no siren


def test_pin_timeout(site_factory: Callable[..., Site]) -> None:
    site = site_factory(pin_timeout_seconds=0.2)
    site.tap("mn-front-in", "yamada")
    site.settle(0.4)
    assert site.events(reason="pin_timeout")
    assert not site.io("mnf-strike").is_active


def test_keypad_feedback_is_the_same_for_every_key(site: Site) -> None:
    reader = site.ctl.readers["mn-front-in"]
    site.tap("mn-front-in", "yamada")
    before = len(reader.feedback_log)  # type: ignore[attr-defined]
    site.keys("mn-front-in", "0123456789*")
    keyfb = reader.feedback_log[before:]  # type: ignore[attr-defined]
    assert len(keyfb) == 11 and len(set(keyfb)) == 1


# --- doors and alarms (4(4)) ------------------------------------------------------------


def test_forced_door_raises_alarm_and_siren(site: Site) -> None:
    site.io("sr-contact").drive(True)
    site.settle()
    assert len(site.alarms("door_forced")) == 1
    assert site.io("siren").is_active and site.io("lamp").is_active
    assert site.events(reason="door_forced")
    with session_scope(site.sessions) as s:
        from db.models import Incident

        (incident,) = s.scalars(select(Incident)).all()
        assert (
            incident.kind == "door_forced" and incident.alarm_id == site.alarms("door_forced")[0].id
        )


def test_exit_button_is_not_forced(site: Site) -> None:
    site.io("sr-rex").pulse()
    site.settle()
    assert site.io("sr-strike").is_active
    walk_through(site)
    assert site.events(reason="exit_button")
    assert site.alarms("door_forced") == []


def test_held_open_raises_then_restores_on_close(site_factory: Callable[..., Site]) -> None:
    site = site_factory(held_open_seconds=0.2)
    site.tap("sr-in", "yamada")
    site.io("sr-contact").drive(True)
    site.settle(0.4)
    alarms = site.alarms("door_held")
    assert len(alarms) == 1 and alarms[0].restored_at is None
    site.io("sr-contact").drive(False)
    site.settle()
    assert site.events(reason="door_held_restored")
    assert site.alarms("door_held")[0].restored_at is not None


def test_tamper_raises_an_alarm(site: Site) -> None:
    site.io("sr-tamper").drive(True)
    site.settle()
    assert len(site.alarms("tamper")) == 1
    site.io("sr-tamper").drive(False)
    site.settle()
    assert site.events(reason="tamper_restored")


def test_acknowledging_the_last_audible_alarm_silences_the_siren(site: Site) -> None:
    site.io("sr-contact").drive(True)
    site.settle()
    alarm = site.alarms("door_forced")[0]
    assert site.io("siren").is_active
    from db.commands import CommandKind, enqueue
    from db.models import Command

    with session_scope(site.sessions) as s:
        cmd_id = enqueue(s, CommandKind.ACK_ALARM, {"alarm_id": alarm.id, "comment": "ok"}).id
    deadline = time.monotonic() + 5
    while True:
        with session_scope(site.sessions) as s:
            cmd = s.get(Command, cmd_id)
            assert cmd is not None
            if cmd.state == "done":
                break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    site.settle()
    assert not site.io("siren").is_active
    assert site.alarms("door_forced")[0].state == "acknowledged"


def test_named_escort_who_is_not_the_visits_escort_is_refused(
    site_factory: Callable[..., Site],
) -> None:
    site = site_factory(escort_window_seconds=0.3)
    with session_scope(site.sessions) as s:
        from db.models import Area, Person, Visit

        room = s.scalar(select(Area).where(Area.code == "mynumber-room"))
        sato = s.scalar(select(Person).where(Person.employee_no == "E0002"))
        assert room is not None and sato is not None
        s.execute(update(Visit).values(area_id=room.id, declared_devices=[], escort_id=sato.id))
    site.tap("mn-back-in", "visitor")
    assert site.tap("mn-back-in", "yamada")["reason"] == "purpose_wanted"
    assert site.keys("mn-back-in", "1#")["decision"] == "granted"  # Yamada himself may enter
    site.settle(0.5)
    assert site.events(reason="granted_escorted") == []
    assert site.events(reason="escort_not_allowed")


def test_an_escort_takes_at_most_max_visitors(site: Site) -> None:
    with session_scope(site.sessions) as s:
        from db.models import Area

        s.execute(update(Area).where(Area.code == "server-room").values(max_visitors_per_escort=0))
    site.tap("sr-in", "yamada")
    assert site.tap("sr-in", "visitor")["reason"] == "escort_limit"


def test_two_person_rule(site_factory: Callable[..., Site]) -> None:
    site = site_factory(escort_window_seconds=0.3)
    with session_scope(site.sessions) as s:
        from db.models import Area, Authorization, Person, Training

        s.execute(update(Area).where(Area.code == "server-room").values(two_person_rule=True))
        # Suzuki needs current training to be the second person
        suzuki = s.scalar(select(Person).where(Person.employee_no == "E0003"))
        assert suzuki is not None
        from datetime import date

        s.add(Training(person_id=suzuki.id, course="refresher", completed_on=date.today()))
        assert s.scalars(select(Authorization).where(Authorization.person_id == suzuki.id)).all()
    # alone: waits, then times out, door never released
    assert site.tap("sr-in", "yamada")["reason"] == "second_person_wanted"
    assert not site.io("sr-strike").is_active
    site.settle(0.5)
    assert site.events(reason="two_person_timeout")
    # with a second person in time: both granted
    site.tap("sr-in", "yamada")
    assert site.tap("sr-in", "suzuki")["decision"] == "granted"
    assert len(site.events(reason="granted")) == 2
    walk_through(site)
    assert len(inside(site)) == 2
    # the last-but-one leaving raises the alarm
    site.tap("sr-out", "suzuki")
    walk_through(site)
    assert len(site.alarms("two_person_violation")) == 1


def test_purpose_is_asked_at_the_keypad(site_factory: Callable[..., Site]) -> None:
    site = site_factory(pin_timeout_seconds=0.3)
    assert site.tap("mn-back-in", "yamada")["reason"] == "purpose_wanted"
    assert not site.io("mnb-strike").is_active
    assert site.keys("mn-back-in", "3#")["reason"] == "granted_card_purpose"
    assert site.io("mnb-strike").is_active
    (row,) = site.events(reason="granted_card_purpose")
    assert row.purpose == site.cfg.purposes["3"]
    # an unknown code is refused, no code at all times out
    walk_through(site, "mnb-contact")
    site.tap("mn-back-out", "yamada")
    walk_through(site, "mnb-contact")
    site.tap("mn-back-in", "yamada")
    assert site.keys("mn-back-in", "9#")["reason"] == "purpose_invalid"
    site.tap("mn-back-in", "yamada")
    site.settle(0.5)
    assert site.events(reason="purpose_timeout")


def test_no_pin_in_any_log_record(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    wrong = "".join(str((int(c) + 5) % 10) for c in site.pin)
    site.tap("mn-front-in", "yamada")
    site.keys("mn-front-in", wrong + "#")
    site.tap("mn-front-in", "yamada")
    site.keys("mn-front-in", site.pin + "#")
    site.settle()
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert site.pin not in text and wrong not in text
    from readers.events import KeypadInput

    assert site.pin not in repr(KeypadInput("r", site.pin))


# --- the site's time zone ----------------------------------------------------------------


def test_a_new_york_site_opens_at_new_york_office_hours(site_factory: Callable[..., Site]) -> None:
    """The weekly schedule and the training day are read in ``[site] timezone``: the door of
    a New York site opens at 09:30 New York time and not at 08:30, whatever Tokyo's hour."""
    now = [datetime(2026, 11, 26, 14, 30, tzinfo=UTC)]  # Thu 09:30 EST (23:30 JST)
    site = site_factory(timezone="America/New_York", clock=lambda: now[0])
    office = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    with session_scope(site.sessions) as s:
        yamada = s.scalars(select(Person).where(Person.name == "山田 太郎")).one()
        s.execute(update(Authorization).where(Authorization.person_id == yamada.id)
                  .values(schedule=office))  # fmt: skip
        # a training valid through 26 November (the anniversary) on the site's calendar
        s.execute(update(Training).where(Training.person_id == yamada.id)
                  .values(completed_on=date(2025, 11, 26)))  # fmt: skip
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    walk_through(site)
    assert site.tap("sr-out", "yamada")["decision"] == "granted"
    walk_through(site)
    now[0] = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)  # 08:30 EST, 22:30 JST
    assert site.tap("sr-in", "yamada")["reason"] == "outside_schedule"
    # Fri 16:30 EST is Sat 06:30 JST: inside New York's Friday hours, and a training valid
    # through 27 November still counts there (in Tokyo it would already be the 28th)
    now[0] = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
    with session_scope(site.sessions) as s:
        s.execute(update(Training).values(completed_on=date(2025, 11, 27)))
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
