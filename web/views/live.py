"""Server-sent events: new events, presence and open alarms pushed to every console page.

The stream reads the database (the contract between the processes): events by keyset from
the last id sent (the browser's ``Last-Event-ID`` on reconnect), presence counts and the
open alarms whenever they change. Waitress gives each open stream a worker thread, so a
stream is bounded: it ends after STREAM_SECONDS and the browser reconnects after ``retry``
(EventSource does so by itself), and at most MAX_STREAMS run at once; a page over the limit
is told to come back later instead of taking the last worker. Each reconnect passes the
permission check again, so a revoked session stops receiving within one stream's time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from db.controllers import ids_between, number_of, range_heads
from db.models import Alarm, AlarmState, Area, Door, Event, Person, Presence
from domain.reasons import ALARM_TEXT, AlarmKind, sentence
from domain.words import word
from web.auth import passive
from web.db import session_factory
from web.i18n import site_zone
from web.ids import MAX_BIG_ID, parse_id
from web.roles import requires

bp = Blueprint("live", __name__, url_prefix="/live")

STREAM_SECONDS = 25.0  # one stream's life; then the browser reconnects
POLL_SECONDS = 1.0
RETRY_MS = 2000
BUSY_RETRY_MS = 15000
MAX_STREAMS = 4  # of serve.THREADS (8) worker threads: the other 4 stay free for pages
EVENTS_PER_POLL = 50

_streams = threading.BoundedSemaphore(MAX_STREAMS)


def _alarm_name(kind: str, locale: str) -> str:
    try:
        s = ALARM_TEXT[AlarmKind(kind)]
    except ValueError:
        return kind
    return s.ja if locale.startswith("ja") else s.en


def open_alarms(db: Session, locale: str, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Raised (not yet acknowledged) alarms, newest first: what the banner shows."""
    rows = db.execute(
        select(Alarm.id, Alarm.kind, Alarm.silent, Alarm.raised_at, Door.name, Area.name)
        .outerjoin(Door, Door.id == Alarm.door_id)
        .outerjoin(Area, Area.id == Alarm.area_id)
        .where(Alarm.state == AlarmState.RAISED)
        .order_by(Alarm.id.desc())
        .limit(20)
    ).all()
    return [
        {
            "id": i,
            "kind": kind,
            "text": _alarm_name(kind, locale),
            "silent": bool(silent),
            "place": door or area or "",
            "time": raised.astimezone(zone).strftime("%H:%M:%S"),
        }
        for i, kind, silent, raised, door, area in rows
    ]


def _alarm_signature(db: Session) -> list[Any]:
    """Changes whenever an alarm is raised, acknowledged or cleared (for the alarms page)."""
    return [
        list(r)
        for r in db.execute(
            select(Alarm.state, func.count(), func.max(Alarm.id)).group_by(Alarm.state)
        ).all()
    ]


def _presence(db: Session) -> dict[str, int]:
    return {
        code: n
        for code, n in db.execute(
            select(Area.code, func.count(Presence.id))
            .outerjoin(Presence, Presence.area_id == Area.id)
            .group_by(Area.code)
        ).all()
    }


def encode_position(last: dict[int, int]) -> str:
    """The stream's position: the last event id sent, one per controller id range
    (db.controllers); a plain id while every event is in the first range."""
    if set(last) <= {1}:
        return str(last.get(1, 0))
    return ",".join(f"{n}:{i}" for n, i in sorted(last.items()))


def decode_position(value: str) -> dict[int, int] | None:
    """``encode_position``'s text back (None: missing or not one)."""
    value = value.strip()
    if not value:
        return None
    out: dict[int, int] = {}
    for part in value.split(",")[:64]:
        n_text, sep, i_text = part.partition(":")
        if not sep:  # a plain id: the range it lies in
            i = parse_id(n_text, MAX_BIG_ID)
            if i is None:
                return None
            out[number_of(i)] = i
            continue
        n, i = parse_id(n_text), parse_id(i_text, MAX_BIG_ID)
        if n is None or i is None:
            return None
        out[n] = i
    return out


def _events(
    db: Session, after: dict[int, int], locale: str, zone: ZoneInfo
) -> list[dict[str, Any]]:
    who = aliased(Person)
    rows = db.execute(
        select(
            Event.id,
            Event.occurred_at,
            Event.direction,
            Event.decision,
            Event.reason,
            Event.purpose,
            Door.name,
            who.name,
        )
        .outerjoin(Door, Door.id == Event.door_id)
        .outerjoin(who, who.id == Event.person_id)
        .where(ids_between(after, {**after, **range_heads(db)}))
        .order_by(Event.id)
        .limit(EVENTS_PER_POLL)
    ).all()
    return [
        {
            "id": i,
            "time": t.astimezone(zone).strftime("%H:%M:%S"),
            "door": door or "",
            "direction": word("direction", direction, locale),
            "person": person or "",
            "decision": decision,
            "decision_text": word("decision", decision, locale),
            "reason": sentence(reason, locale),
            "purpose": purpose or "",
        }
        for i, t, direction, decision, reason, purpose, door, person in rows
    ]


def _message(kind: str, data: Any, ident: int | str | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.route("/stream")
@requires("live.view")
@passive
def stream() -> ResponseReturnValue:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if not _streams.acquire(blocking=False):
        # every stream slot is taken: the page tries again later, the worker goes back
        return Response(
            f"retry: {BUSY_RETRY_MS}\n\n", mimetype="text/event-stream", headers=headers
        )
    try:
        locale, zone = str(get_locale() or "ja"), site_zone()
        seconds = float(current_app.config.get("NYUTAI_STREAM_SECONDS", STREAM_SECONDS))
        poll = float(current_app.config.get("NYUTAI_STREAM_POLL_SECONDS", POLL_SECONDS))
        last = decode_position(
            request.headers.get("Last-Event-ID") or request.args.get("last", "")
        )
        factory = session_factory()
    except BaseException:
        _streams.release()
        raise
    released = threading.Lock()

    def release() -> None:  # once, whether the generator ran, ended or was never started
        if released.acquire(blocking=False):
            _streams.release()

    def generate() -> Iterator[str]:
        nonlocal last
        try:
            yield f"retry: {RETRY_MS}\n\n"
            alarms_seen: Any = None
            signature_seen: Any = None
            presence_seen: Any = None
            end = time.monotonic() + seconds
            while True:
                with factory() as db:
                    if last is None:  # a fresh page: only what happens from now on
                        last = range_heads(db)
                        yield _message("hello", {"last": encode_position(last)},
                                       encode_position(last))  # fmt: skip
                    alarms = open_alarms(db, locale, zone)
                    signature = _alarm_signature(db)
                    presence = _presence(db)
                    events = _events(db, last, locale, zone)
                if alarms != alarms_seen:
                    yield _message("alarms", alarms)
                    alarms_seen = alarms
                if signature != signature_seen:
                    if signature_seen is not None:
                        yield _message("alarms_changed", signature)
                    signature_seen = signature
                if presence != presence_seen:
                    yield _message("presence", presence)
                    presence_seen = presence
                for ev in events:
                    last[number_of(ev["id"])] = ev["id"]
                    yield _message("event", ev, encode_position(last))
                if time.monotonic() >= end:
                    return
                time.sleep(poll)
        finally:
            release()

    response = Response(
        stream_with_context(generate()), mimetype="text/event-stream", headers=headers
    )
    response.call_on_close(release)
    return response
