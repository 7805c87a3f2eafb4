"""The live dashboard: occupancy, alarms, devices, last events, entries per hour today."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

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
from web.auth import passive
from web.db import get_session
from web.i18n import site_zone
from web.roles import PUBLIC, requires

bp = Blueprint("dashboard", __name__)

RECENT_EVENTS = 15


def live_data(db: Session) -> dict[str, object]:
    areas = list(db.scalars(select(Area).order_by(Area.code)))
    presence = db.scalars(
        select(Presence)
        .options(joinedload(Presence.person), joinedload(Presence.escort))
        .order_by(Presence.entered_at)
    )
    inside: dict[int, list[Presence]] = defaultdict(list)
    for p in presence:
        inside[p.area_id].append(p)
    alarms = list(
        db.scalars(
            select(Alarm)
            .options(joinedload(Alarm.door))
            .where(Alarm.state != AlarmState.CLEARED)
            .order_by(Alarm.raised_at.desc())
            .limit(50)
        ).unique()
    )
    devices = list(db.scalars(select(DeviceStatus).order_by(DeviceStatus.kind, DeviceStatus.key)))
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
        "areas": areas,
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
    counts = [0] * 24
    times = db.scalars(
        select(Event.occurred_at).where(
            Event.occurred_at >= midnight,
            Event.occurred_at < midnight + timedelta(days=1),
            Event.decision == Decision.GRANTED,
            Event.direction == Direction.IN,
        )
    )
    for t in times:
        counts[t.astimezone(zone).hour] += 1
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
