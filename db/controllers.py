"""Several controllers on one database: who they are, which doors they run, where commands go.

A controller registers under its id at start-up (``register``): it gets a ``number`` (its event
ids come from its own range, ``id_range``), writes a fresh heartbeat and claims its doors in
the same transaction. A door already claimed by another controller whose heartbeat is fresh
(it is running) stops the start-up with ``DoorClaimed`` (reason ``door_claimed``); a door
whose owner is silent longer than ``STALE_SECONDS`` is taken over (moving a door from one
controller to another is a site-file edit and two restarts). The claim is one conditional
UPDATE per door, so two controllers starting at once cannot both win.

Each controller's events form their own hash chain: the chain of the default controller keeps
the log name ``events`` (existing checkpoints and deletion records stay valid); another
controller's chain is ``events@ID`` (``chain_log``).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, text, update
from sqlalchemy.orm import Session

from db.chain import chain_log, chain_where, log_controller  # noqa: F401 - re-exported
from db.models import Alarm, ControllerRow, Door, Event
from domain.config import DEFAULT_CONTROLLER_ID
from domain.reasons import Reason

ID_BITS = 40  # 2**40 event ids per controller
HEARTBEAT_SECONDS = 5.0
# a controller silent this long is not running: its doors may be claimed by another
STALE_SECONDS = 3 * HEARTBEAT_SECONDS


class DoorClaimed(RuntimeError):
    """A door of this controller's file is run by another controller that is alive."""

    reason = Reason.DOOR_CLAIMED

    def __init__(self, door: str, owner: str, me: str) -> None:
        self.door, self.owner, self.me = door, owner, me
        super().__init__(
            f"{Reason.DOOR_CLAIMED.value}: door {door!r} is run by controller {owner!r} "
            f"(alive); controller {me!r} cannot claim it: give each door to one controller "
            "in the site file (doors.<code>.controller)"
        )


def number_of(event_id: int) -> int:
    """The number of the controller whose range holds ``event_id``."""
    return (event_id >> ID_BITS) + 1


def id_ranges(session: Session) -> list[int]:
    """The controller numbers whose id ranges may hold events (1 always: rows appended
    outside any controller, and sites that never registered one, use the first range)."""
    return sorted(set(session.scalars(select(ControllerRow.number))) | {1})


def range_heads(session: Session) -> dict[int, int]:
    """The newest event id in each controller's range (one index lookup per controller)."""
    out: dict[int, int] = {}
    for n in id_ranges(session):
        lo, hi = id_range(n)
        top = session.scalar(select(func.max(Event.id)).where(Event.id >= lo, Event.id < hi))
        if top is not None:
            out[n] = int(top)
    return out


def ids_between(cursor: dict[int, int], upper: dict[int, int]) -> ColumnElement[bool]:
    """Events past ``cursor`` and up to ``upper`` in each controller's id range: how a reader
    that follows the log by id sees every writer (each controller's ids grow in the order
    it commits; two controllers' ids do not interleave)."""
    parts = []
    for n, top in upper.items():
        lo, _hi = id_range(n)
        after = max(cursor.get(n, lo - 1), lo - 1)
        if top > after:
            parts.append(and_(Event.id > after, Event.id <= top))
    return or_(*parts) if parts else false()


def id_range(number: int) -> tuple[int, int]:
    """[low, high) of the event ids controller ``number`` allocates (1: from 0, so a site
    with one controller keeps the ids it had)."""
    low = (number - 1) << ID_BITS
    return low, low + (1 << ID_BITS)


def event_chains(session: Session, *, scan: bool = False) -> list[str]:
    """The controllers that have an events chain, default first (``chain_log`` of each is
    its log name): every registered controller, and the default one if it wrote rows (two
    index lookups). ``scan`` also reads every row's controller (verification: a row whose
    controller never registered is checked too)."""
    have = set(session.scalars(select(ControllerRow.code)))
    default = select(Event.id).where(Event.controller == DEFAULT_CONTROLLER_ID).limit(1)
    if session.scalar(default) is not None:
        have.add(DEFAULT_CONTROLLER_ID)
    if scan:
        have |= set(session.scalars(select(Event.controller).distinct()))
    if not have:
        have = {DEFAULT_CONTROLLER_ID}
    return sorted(have, key=lambda c: (c != DEFAULT_CONTROLLER_ID, c))


def controller_codes(session: Session) -> list[str]:
    """Every controller id known (registered, or owning a door), for filters and pages."""
    codes = set(session.scalars(select(ControllerRow.code)))
    codes |= {c for c in session.scalars(select(Door.controller).distinct()) if c}
    return sorted(codes)


REGISTRATION_LOCK = 0x6E79757461690003  # pg_advisory_xact_lock key (db.eventlog: ...01, ...02)


def lock_registrations(session: Session) -> None:
    """Hold the registration lock to the end of the transaction (SQLite: its write lock)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REGISTRATION_LOCK})
    elif dialect == "sqlite":
        session.execute(text("UPDATE controllers SET code = code WHERE number = -1"))


def register(session: Session, me: str, doors: list[str], now: datetime) -> tuple[int, list[str]]:
    """Register controller ``me`` (heartbeat now) and claim ``doors``; returns its number and
    the doors taken over from a silent controller. Raises DoorClaimed (the caller rolls
    back). Run in its own transaction, before anything else of the controller."""
    lock_registrations(session)  # two controllers registering at once: distinct numbers
    row = session.scalar(select(ControllerRow).where(ControllerRow.code == me))
    if row is None:
        number = int(session.scalar(select(func.max(ControllerRow.number))) or 0) + 1
        row = ControllerRow(number=number, code=me)
        session.add(row)
    row.started_at = now
    row.heartbeat_at = now
    row.host = socket.gethostname()[:200]
    row.pid = os.getpid()
    row.doors = sorted(doors)
    session.flush()
    stale = now - timedelta(seconds=STALE_SECONDS)
    alive = select(ControllerRow.code).where(
        ControllerRow.code != me, ControllerRow.heartbeat_at >= stale
    )
    taken_over: list[str] = []
    for code in doors:
        owner = session.scalar(select(Door.controller).where(Door.code == code))
        result = session.execute(
            update(Door)
            .where(
                Door.code == code,
                or_(
                    Door.controller.is_(None), Door.controller == me, Door.controller.not_in(alive)
                ),
            )
            .values(controller=me)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            owner = session.scalar(select(Door.controller).where(Door.code == code))
            raise DoorClaimed(code, str(owner), me)
        if owner is not None and owner != me:
            taken_over.append(code)
    return row.number, taken_over


def heartbeat(session: Session, me: str, now: datetime, **health: Any) -> None:
    """The controller's periodic health row (its own thread, never the door thread)."""
    session.execute(
        update(ControllerRow)
        .where(ControllerRow.code == me)
        .values(heartbeat_at=now, **health)
        .execution_options(synchronize_session=False)
    )


# --- where a command goes ---------------------------------------------------------------


def controller_of_door(session: Session, door: str) -> str | None:
    return session.scalar(select(Door.controller).where(Door.code == door))


def controller_of_reader(session: Session, reader: str) -> str | None:
    return session.scalar(
        select(Door.controller).where(or_(Door.entry_reader == reader, Door.exit_reader == reader))
    )


def controller_of_alarm(session: Session, alarm_id: int) -> str | None:
    return session.scalar(select(Alarm.controller).where(Alarm.id == alarm_id))


def controllers_of_area(session: Session, area_id: int | None) -> list[str]:
    """The controllers running a door of the area (every controller with doors: None)."""
    q = select(Door.controller).where(Door.controller.is_not(None)).distinct()
    if area_id is not None:
        q = q.where(Door.area_id == area_id)
    return sorted(c for c in session.scalars(q) if c is not None)


# --- who runs the site's scheduled duties -------------------------------------------------

DUTY_LEASE_KEY = "duty_runner"  # site_settings row: {"holder": controller id}, updated_at
DUTY_LEASE_LOCK = 0x6E79757461690004  # pg_advisory_xact_lock key


def take_duty_lease(session: Session, me: str, now: datetime, stale_seconds: float) -> str | None:
    """Renew or take the duty lease for controller ``me``; returns the holder afterwards.

    One lease per database: the holder renews it (``updated_at``) every heartbeat; another
    controller takes it when it is free (released at a clean stop) or its holder has not
    renewed it for ``stale_seconds``. The read and the write happen under one lock (PostgreSQL:
    an advisory transaction lock; SQLite: its write lock), so two controllers deciding at once
    cannot both take it. Commit the caller's transaction promptly."""
    from db.models import SiteSetting

    _lock_duty_lease(session)
    row = session.get(SiteSetting, DUTY_LEASE_KEY, populate_existing=True)
    holder = (row.value or {}).get("holder") if row is not None else None
    free = (
        row is None
        or holder is None
        or holder == me
        or _as_utc(row.updated_at) < now - timedelta(seconds=stale_seconds)
    )
    if not free:
        return str(holder)
    if row is None:
        row = SiteSetting(key=DUTY_LEASE_KEY, value={"holder": me}, updated_at=now)
        session.add(row)
    else:
        row.value = {"holder": me}
        row.updated_at = now
    session.flush()
    return me


def release_duty_lease(session: Session, me: str) -> None:
    """Give the lease up at a clean stop (another controller takes it at its next beat)."""
    from db.models import SiteSetting

    _lock_duty_lease(session)
    row = session.get(SiteSetting, DUTY_LEASE_KEY, populate_existing=True)
    if row is not None and (row.value or {}).get("holder") == me:
        row.value = {"holder": None}
        session.flush()


def _lock_duty_lease(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DUTY_LEASE_LOCK})
    elif dialect == "sqlite":
        session.execute(text("UPDATE site_settings SET key = key WHERE key = :k"),
                        {"k": DUTY_LEASE_KEY})  # fmt: skip


def _as_utc(v: datetime) -> datetime:
    from datetime import UTC

    return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
