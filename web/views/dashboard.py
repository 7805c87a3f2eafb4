"""The live dashboard: occupancy, alarms, devices, last events, entries per hour today."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from db.lockdowns import active_lockdowns
from db.models import (
    Alarm,
    AlarmState,
    Area,
    Decision,
    DeviceStatus,
    Direction,
    Door,
    Event,
    Presence,
)
from db.types import utcnow
from domain.vocabulary import LOCKDOWN_STATUS
from web.auth import passive
from web.db import get_session
from web.i18n import site_zone
from web.roles import PUBLIC, requires

bp = Blueprint("dashboard", __name__)

RECENT_EVENTS = 15
INSIDE_SHOWN = 10
_ENDED_HOURS: dict[tuple[int, datetime], int] = {}


def live_data(db: Session) -> dict[str, object]:
    # Bounded at any occupancy: a count per area and its latest INSIDE_SHOWN entrants; the
    # occupancy page pages through everyone.
    areas = list(db.scalars(select(Area).order_by(Area.code)))
    counts: dict[int, int] = dict(
        db.execute(select(Presence.area_id, func.count()).group_by(Presence.area_id)).all()
    )
    inside: dict[int, list[Presence]] = defaultdict(list)
    for a in areas:
        if counts.get(a.id):
            inside[a.id] = list(
                db.scalars(
                    select(Presence)
                    .options(joinedload(Presence.person), joinedload(Presence.escort))
                    .where(Presence.area_id == a.id)
                    .order_by(Presence.entered_at.desc(), Presence.id.desc())
                    .limit(INSIDE_SHOWN)
                )
            )
    alarms = list(
        db.scalars(
            select(Alarm)
            .options(joinedload(Alarm.door))
            .where(Alarm.state != AlarmState.CLEARED)
            .order_by(Alarm.raised_at.desc())
            .limit(50)
        ).unique()
    )
    devices = list(
        db.scalars(
            select(DeviceStatus)
            .where(DeviceStatus.kind != LOCKDOWN_STATUS)  # shown by area, not as a device
            .order_by(DeviceStatus.kind, DeviceStatus.key)
        )
    )
    events = list(
        db.scalars(
            select(Event)
            .options(joinedload(Event.person), joinedload(Event.door), joinedload(Event.escort))
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(RECENT_EVENTS)
        ).unique()
    )
    return {
        "device_names": device_names(db),
        "lockdowns": active_lockdowns(db),
        "areas": areas,
        "counts": counts,
        "inside": inside,
        "alarms": alarms,
        "devices": devices,
        "events": events,
        "hours": entries_per_hour(db),
    }


def device_names(db: Session) -> dict[tuple[str, str], str]:
    """What an operator calls a device: the door's name for a door and for its readers."""
    names: dict[tuple[str, str], str] = {}
    for code, name, entry, exit_ in db.execute(
        select(Door.code, Door.name, Door.entry_reader, Door.exit_reader)
    ):
        names[("door", code)] = name
        if entry:
            names[("reader", entry)] = name
        if exit_:
            names[("reader", exit_)] = name
    return names


def entries_per_hour(db: Session) -> list[int]:
    """Granted entries per local hour since local midnight (a day is a few thousand rows)."""
    zone = site_zone()
    now_local = utcnow().astimezone(zone)
    midnight = datetime.combine(now_local.date(), time(0), tzinfo=zone)
    # one count per hour, each an index range (decision, occurred_at): a busy day's tens of
    # thousands of rows stay in the database
    # thousands of rows stay in the database. An hour that has ended is counted once per
    # process (the log is append-only); only the current hour is counted on every poll.
    counts = []
    bind = id(db.get_bind())
    for h in range(24):
        start = midnight + timedelta(hours=h)
        key = (bind, start)
        if key in _ENDED_HOURS:
            counts.append(_ENDED_HOURS[key])
            continue
        n = 0
        if start <= now_local:
            n = (
                db.scalar(
                    select(func.count()).where(
                        Event.decision == Decision.GRANTED,
                        Event.occurred_at >= start,
                        Event.occurred_at < start + timedelta(hours=1),
                        Event.direction == Direction.IN,
                    )
                )
                or 0
            )
        if start + timedelta(hours=1) <= now_local - timedelta(minutes=1):
            if len(_ENDED_HOURS) > 10_000:
                _ENDED_HOURS.clear()
            _ENDED_HOURS[key] = n
        counts.append(n)
    return counts


@bp.route("/")
@requires(PUBLIC)
def root() -> ResponseReturnValue:
    return redirect(url_for("dashboard.index"))


@bp.route("/dashboard")
@requires("live.view")
def index() -> ResponseReturnValue:
    return render_template("dashboard.html", **live_data(get_session()))


@bp.route("/dashboard/live")
@requires("live.view")
@passive
def live() -> ResponseReturnValue:
    return render_template("dashboard_live.html", **live_data(get_session()))


@bp.route("/health")
@requires(PUBLIC)
def health() -> ResponseReturnValue:
    return {"status": "ok"}
