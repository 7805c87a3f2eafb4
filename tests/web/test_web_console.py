"""Issue 13's live console and words: the SSE stream, the guard's 24-hour search, the audit
log's readable differences, keyset pages and refused attempts, the dashboard's words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from db.eventlog import append_event
from db.models import Alarm, AuditLog, DeviceStatus, Event
from db.types import utcnow
from domain.words import AUDIT_ACTIONS, word
from tests.web.conftest import Auth, Site
from web.audit_view import changes


def _event(s: Any, site: Site, minutes_ago: float, **kw: Any) -> Event:
    ev = Event(
        occurred_at=utcnow() - timedelta(minutes=minutes_ago),
        kind="presentation",
        direction="in",
        door_id=site.sr_door,
        area_id=site.server_room,
        person_id=site.tanaka,
        decision="granted",
        reason="granted",
        **kw,
    )
    append_event(s, ev)
    return ev


def _sse(text: str) -> list[tuple[str, str, str | None]]:
    """(event, data, id) of each message in a stream body."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _sep, value = line.partition(": ")
            fields[key] = value
        if "event" in fields:
            out.append((fields["event"], fields.get("data", ""), fields.get("id")))
    return out


def test_stream_sends_alarms_and_new_events_from_the_last_id(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    with session_factory() as s:
        old = _event(s, site, 5)
        s.add(Alarm(kind="door_forced", door_id=site.sr_door, raised_at=utcnow()))
        s.add(
            Alarm(kind="door_held", door_id=site.sr_door, raised_at=utcnow(), state="acknowledged")
        )
        s.commit()
        old_id = old.id
    auth.login("guard")
    resp = auth.client.get("/live/stream")
    assert resp.mimetype == "text/event-stream"
    body = resp.get_data(as_text=True)
    assert body.startswith("retry: ")  # the browser reconnects after the bounded stream
    msgs = _sse(body)
    alarms = [m for m in msgs if m[0] == "alarms"]
    assert "扉のこじ開け" in alarms[0][1] and "サーバ室 扉" in alarms[0][1]
    assert "扉の長時間開放" not in alarms[0][1]  # acknowledged: no longer on the banner
    assert not [m for m in msgs if m[0] == "event"]  # a fresh page gets no backlog
    with session_factory() as s:
        new = _event(s, site, 0, purpose="保守")
        s.commit()
        new_id = new.id
    again = auth.client.get("/live/stream", headers={"Last-Event-ID": str(old_id)})
    events = [m for m in _sse(again.get_data(as_text=True)) if m[0] == "event"]
    assert [m[2] for m in events] == [str(new_id)]
    assert "許可" in events[0][1] and "保守" in events[0][1] and "入室" in events[0][1]


def test_streams_are_bounded_in_number(
    app: Flask, site: Site, auth: Auth, monkeypatch: Any
) -> None:
    import threading

    import web.views.live as live

    monkeypatch.setattr(live, "_streams", threading.BoundedSemaphore(1))
    live._streams.acquire()  # another page holds the only slot
    auth.login("guard")
    busy = auth.client.get("/live/stream").get_data(as_text=True)
    assert busy.strip() == f"retry: {live.BUSY_RETRY_MS}"
    live._streams.release()
    assert "event: alarms" in auth.client.get("/live/stream").get_data(as_text=True)
    # the slot came back after the stream ended
    assert live._streams.acquire(blocking=False)


def test_every_page_has_the_banner_and_guards_get_the_sound(
    app: Flask, site: Site, auth: Auth
) -> None:
    auth.login("guard")
    page = auth.client.get("/visitors/").text
    assert 'id="alarm-banner"' in page and 'data-sound="1"' in page
    auth.client.post("/logout", data={"csrf_token": auth.token("/dashboard")})
    auth.login("manager")
    page = auth.client.get("/people/").text
    assert 'id="alarm-banner"' in page and 'data-sound=""' in page


def test_guard_searches_the_last_24_hours_only(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    with session_factory() as s:
        _event(s, site, 60 * 30, purpose="昨日より前")
        _event(s, site, 60, purpose="一時間前")
        s.commit()
    auth.login("guard")
    assert auth.client.get("/events/").status_code == 403
    page = auth.client.get("/events/recent/").text
    assert "一時間前" in page and "昨日より前" not in page
    # asking for an earlier start does not widen the window
    wide = auth.client.get("/events/recent/?from=2000-01-01T00:00").text
    assert "昨日より前" not in wide and "一時間前" in wide
    assert "csv-export" not in page
    assert "入退室記録（24時間）" in auth.client.get("/dashboard").text


def test_refused_attempts_are_in_the_audit_log(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("guard")
    assert auth.client.get("/admin/").status_code == 403
    with session_factory() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "access_refused")).one()
        assert row.username == "guard" and row.after == {"method": "GET", "path": "/admin/"}


def test_audit_changes_are_readable() -> None:
    zone = ZoneInfo("Asia/Tokyo")
    diff = changes(
        {"name": "伊藤 誠", "designated": False, "valid_until": None},
        {"name": "伊藤 誠", "designated": True, "valid_until": "2026-03-31T14:59:59+00:00"},
        "ja",
        zone,
    )
    assert [(c.field, c.before, c.after) for c in diff] == [
        ("取扱者指定", "いいえ", "はい"),
        ("有効期間の終了", "—", "2026-03-31 23:59"),
    ]


def test_audit_page_shows_words_and_pages_both_ways(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("manager")
    auth.post(
        f"/people/{site.tanaka}/edit",
        {"name": "田中 一郎", "organization": "サービス課", "employee_no": "E001"},
        page=f"/people/{site.tanaka}/edit",
    )
    auth.client.post("/logout", data={"csrf_token": auth.token("/dashboard")})
    auth.login("administrator")
    page = auth.client.get("/audit/").text
    assert "人物の変更" in page and "サービス課" in page and "\\u" not in page
    assert "person.update" not in page.split('id="audit-table"')[1]
    with session_factory() as s:
        ids = list(s.scalars(select(AuditLog.id).order_by(AuditLog.id.desc())))
    import web.views.audit_log as mod

    old_page = mod.PAGE
    mod.PAGE = 2
    try:
        first = auth.client.get("/audit/").text
        older = first.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
        second = auth.client.get(older).text
        assert f'data-audit-id="{ids[2]}"' in second and f'data-audit-id="{ids[0]}"' not in second
        newer = second.split('id="newer" href="')[1].split('"')[0].replace("&amp;", "&")
        back = auth.client.get(newer).text
        assert f'data-audit-id="{ids[0]}"' in back and f'data-audit-id="{ids[1]}"' in back
    finally:
        mod.PAGE = old_page


def test_every_audit_action_written_by_the_code_has_words() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = set()
    for path in [*root.glob("web/**/*.py"), *root.glob("db/**/*.py"), *root.glob("nyutai/*.py")]:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'audit\(\s*"([a-z_.]+)"', text))
        found |= set(re.findall(r'action="([a-z_.]+)"', text))
    assert found and sorted(found - set(AUDIT_ACTIONS)) == []
    assert word("decision", "granted", "en") == "Granted" and word("direction", "out") == "退室"


def test_dashboard_shows_door_names_purpose_and_a_value_axis(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    with session_factory() as s:
        _event(s, site, 1, purpose="定期保守")
        s.add(DeviceStatus(kind="reader", key="sr-in", state="online", updated_at=utcnow()))
        s.commit()
    auth.login("guard")
    page = auth.client.get("/dashboard/live").text
    assert "定期保守" in page
    assert "カードリーダー" in page and "サーバ室 扉 <code>sr-in</code>" in page
    assert 'class="axis"' in page and 'class="tick"' in page
