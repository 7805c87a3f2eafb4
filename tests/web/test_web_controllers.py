"""Several controllers in the console: the status page, the event log's controller filter and
column, and verification naming the controller of a broken chain."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.controllers import heartbeat, register
from db.eventlog import append_event
from db.models import ControllerRow, Event
from db.types import utcnow
from db.verify import verify_all
from tests.web.conftest import Auth, Site

T0 = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)


def add_events(factory: sessionmaker[Session], site: Site) -> None:
    """Six events by each of two controllers, interleaved in time, each in its own chain."""
    with factory() as s:
        for i in range(12):
            append_event(
                s,
                Event(
                    controller="bldg-a" if i % 2 == 0 else "bldg-b",
                    occurred_at=T0 + timedelta(minutes=i),
                    kind="presentation",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    direction="in",
                    person_id=site.tanaka,
                    decision="granted",
                    reason="granted",
                ),
            )
        s.commit()


def test_each_controller_has_its_own_chain(site: Site, session_factory) -> None:  # type: ignore[no-untyped-def]
    add_events(session_factory, site)
    with session_factory() as s:
        rows = s.query(Event.controller, Event.seq).order_by(Event.id).all()
    assert [seq for c, seq in rows if c == "bldg-a"] == [1, 2, 3, 4, 5, 6]
    assert [seq for c, seq in rows if c == "bldg-b"] == [1, 2, 3, 4, 5, 6]
    with session_factory() as s:
        result = verify_all(s, None)
        assert result.ok, [str(f) for r in result.logs for f in r.findings]
        names = {r.log: r.rows_checked for r in result.logs}
        assert names["events@bldg-a"] == 6 and names["events@bldg-b"] == 6
        # alter one row of bldg-b's chain: verification names that controller and row
        victim = s.query(Event).filter_by(controller="bldg-b", seq=4).one()
        s.execute(update(Event).where(Event.id == victim.id).values(reason="forged"))
        s.commit()
        result = verify_all(s, None)
        assert not result.ok
        first = result.first
        assert first is not None
        assert (first.controller, first.seq, first.row_id) == ("bldg-b", 4, victim.id)
        assert "controller bldg-b" in str(first)
        assert {r.log: r.ok for r in result.logs}["events@bldg-a"]


def test_event_log_filters_and_exports_by_controller(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:  # type: ignore[no-untyped-def]
    add_events(session_factory, site)
    with session_factory() as s:
        register(s, "bldg-a", [], utcnow())
        register(s, "bldg-b", [], utcnow())
        s.commit()
    auth.login("manager")
    page = auth.client.get("/events/")
    assert 'id="controller-filter"' in page.text
    assert page.text.count("data-event-id=") == 12
    page = auth.client.get("/events/?controller=bldg-b")
    assert page.text.count("data-event-id=") == 6
    bad = auth.client.get("/events/?controller=No%20Such!")
    assert bad.status_code == 200 and "controller:" in bad.text
    raw = auth.client.get("/events/export.csv?controller=bldg-a").get_data()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][-1] == "制御装置"
    assert len(rows) == 1 + 6 and {r[-1] for r in rows[1:]} == {"bldg-a"}


def test_status_page_shows_each_controllers_health(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with session_factory() as s:
        register(s, "bldg-a", ["server-room-door"], now)
        register(s, "bldg-b", [], now - timedelta(minutes=5))
        heartbeat(
            s, "bldg-a", now, last_event_at=T0, journal_backlog=7, offline_readers=["sr-out"]
        )
        s.execute(
            update(ControllerRow)
            .where(ControllerRow.code == "bldg-b")
            .values(heartbeat_at=now - timedelta(minutes=5))
        )
        s.commit()
    auth.login("guard")
    page = auth.client.get("/controllers/")
    assert page.status_code == 200
    html = page.text
    a = html[html.index('data-controller="bldg-a"') :]
    a = a[: a.index("</tr>")]
    b = html[html.index('data-controller="bldg-b"') :]
    b = b[: b.index("</tr>")]
    assert "稼働中" in a and "応答なし" in b  # bldg-b's heartbeat is five minutes old
    assert '<td class="backlog">7</td>' in a and "sr-out" in a and "server-room-door" in a
    assert "2026-04-01 09:00:00" in a  # the last event, in the site's zone


def test_the_verify_page_checks_each_controllers_chain(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:  # type: ignore[no-untyped-def]
    add_events(session_factory, site)
    auth.login("auditor")
    ok = auth.post("/audit/verify", {}, page="/audit/verify").text
    assert ok.count("改ざんなし") == 3  # bldg-a's chain, bldg-b's chain, the audit log
    assert "bldg-a" in ok and "bldg-b" in ok
    with session_factory() as s:
        s.execute(
            update(Event)
            .where(Event.controller == "bldg-a", Event.seq == 3)
            .values(reason="granted_escorted")
        )
        s.commit()
    broken = auth.post("/audit/verify", {}, page="/audit/verify").text
    assert broken.count("改ざんなし") == 2 and "最初の不整合行: 3" in broken
