"""Bring the database's areas and doors in line with the site file at start-up.

Wiring (which readers, exit button, camera) always follows the file. Policy (held-open
limit, PIN required, anti-passback mode, ...) seeds new rows only: after that an
administrator edits it in the web console, and the database wins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Area, Door
from domain.config import SiteConfig


def sync_site(session: Session, cfg: SiteConfig) -> None:
    areas: dict[str, Area] = {a.code: a for a in session.scalars(select(Area))}
    for code, sec in cfg.areas.items():
        if code not in areas:
            area = Area(
                code=code,
                name=sec.name,
                name_en=sec.name_en or None,
                permitted_devices=list(sec.permitted_devices),
                antipassback=sec.antipassback,
                escort_policy=sec.escort_policy,
                visitor_exit_needs_escort=sec.visitor_exit_needs_escort,
                max_visitors_per_escort=sec.max_visitors_per_escort,
                two_person_rule=sec.two_person_rule,
                offline=sec.offline,
            )
            session.add(area)
            areas[code] = area
    session.flush()
    doors: dict[str, Door] = {d.code: d for d in session.scalars(select(Door))}
    for code, dsec in cfg.doors.items():
        door = doors.get(code)
        if door is None:
            door = Door(
                code=code,
                name=dsec.name,
                area_id=areas[dsec.area].id,
                strike_seconds=dsec.strike_seconds,
                held_open_seconds=dsec.held_open_seconds,
                pin_required=dsec.pin_required,
                pin_timeout_seconds=dsec.pin_timeout_seconds,
                escort_window_seconds=dsec.escort_window_seconds,
                ask_purpose=dsec.ask_purpose,
                snapshot_on_entry=dsec.snapshot_on_entry,
            )
            session.add(door)
        door.area_id = areas[dsec.area].id
        door.entry_reader = dsec.entry_reader
        door.exit_reader = dsec.exit_reader
        door.exit_button = dsec.exit_button
        door.camera = dsec.camera
    session.flush()
