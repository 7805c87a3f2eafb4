"""The live dashboard's content: occupancy with visitors and escorts, alarms, chart."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask

from db.eventlog import append_event
from db.models import Alarm, DeviceStatus, Event, Person, PersonKind, Presence
from db.types import utcnow
from tests.web.conftest import Auth, Site


def test_live_block_shows_occupancy_alarms_devices_and_hours(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    now = utcnow()
    with session_factory() as s:
        visitor = Person(kind=PersonKind.VISITOR, name="来訪 花子")
        s.add(visitor)
        s.flush()
        s.add_all(
            [
                Presence(person_id=site.tanaka, area_id=site.server_room, entered_at=now),
                Presence(
                    person_id=visitor.id,
                    area_id=site.server_room,
                    entered_at=now,
                    escort_person_id=site.tanaka,
                ),
                Alarm(kind="door_forced", door_id=site.sr_door, raised_at=now),
                Alarm(kind="tamper", raised_at=now, state="cleared"),
                DeviceStatus(kind="reader", key="sr-in", state="offline", updated_at=now),
            ]
        )
        for minutes in (0, 1, 2):
            append_event(
                s,
                Event(
                    occurred_at=now - timedelta(minutes=minutes),
                    kind="presentation",
                    direction="in",
                    decision="granted",
                    reason="granted",
                    person_id=site.tanaka,
                    door_id=site.sr_door,
                ),
            )
        append_event(
            s,
            Event(
                occurred_at=now,
                kind="presentation",
                direction="in",
                decision="denied",
                reason="unknown_card",
                raw_card_id="DEADBEEF",
            ),
        )
        s.commit()
    auth.login("guard")
    html = auth.client.get("/dashboard/live").text
    room = html.split('data-area="server-room">')[1]
    assert room.startswith("2<")  # two people inside the server room
    visitor_li = [li for li in html.split("<li>") if "来訪 花子" in li][0]
    assert "person visitor" in visitor_li and "立会者: 田中 一郎" in visitor_li
    assert "扉のこじ開け" in html and "機器のいたずら" not in html  # cleared alarms leave
    assert "オフライン" in html
    tokyo = ZoneInfo("Asia/Tokyo")
    today = [
        m
        for m in (0, 1, 2)
        if (now - timedelta(minutes=m)).astimezone(tokyo).date() == now.astimezone(tokyo).date()
    ]
    assert f'id="entries-today">{len(today)}<' in html
    assert "DEADBEEF" in html and "登録されていないカードです。" in html
    full = auth.client.get("/dashboard").text
    assert 'data-refresh="/dashboard/live"' in full
