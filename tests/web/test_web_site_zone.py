"""A console for a site outside Japan: pages, filters and CSV files follow ``[site] timezone``.

The app is built from a real site file (``timezone = "Europe/London"``), the way ``nyutai
web`` builds it, so the test covers the path from the file to every time shown.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from db.eventlog import append_event
from db.models import Event
from domain.config import load_config
from tests.web.conftest import Auth, Site, report_page
from web import create_app

# 2026-03-31 21:00 BST: still March in London, already 1 April (05:00) in Tokyo
LATE_MARCH = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
# 2026-04-01 00:30 BST (08:30 in Tokyo)
APRIL = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
# 2026-03-01 00:30 GMT (09:30 in Tokyo)
EARLY_MARCH = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)


@pytest.fixture
def london(db_url: str, tmp_path: Path) -> Flask:
    root = tmp_path / "london"
    root.mkdir()
    site_file = root / "site.toml"
    site_file.write_text(
        f'[site]\nname = "London office"\ntimezone = "Europe/London"\n'
        f'[database]\nurl = "{db_url}"\n',
        encoding="utf-8",
    )
    app = create_app(load_config(site_file))
    app.config["TESTING"] = False
    return app


@pytest.fixture
def london_auth(london: Flask) -> Auth:
    client: FlaskClient = london.test_client()
    return Auth(client)


def _events(factory: sessionmaker[Session], site: Site) -> None:
    with factory() as s:
        for at in (EARLY_MARCH, LATE_MARCH, APRIL):
            append_event(
                s,
                Event(
                    occurred_at=at,
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


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return [r for r in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if r]


def test_event_page_filters_and_csv_use_the_site_zone(
    london: Flask, london_auth: Auth, site: Site, session_factory: sessionmaker[Session]
) -> None:
    _events(session_factory, site)
    london_auth.login("auditor")
    page = london_auth.client.get("/events/").text
    assert "2026-04-01 00:30:00" in page and "2026-03-31 21:00:00" in page
    assert "2026-04-01 08:30:00" not in page  # not Tokyo time
    # "from" is a London wall time: 00:45 BST is after the April event's 00:30
    later = london_auth.client.get("/events/?from=2026-04-01T00:45").text
    assert later.count("data-event-id=") == 0
    since = london_auth.client.get("/events/?from=2026-03-31T21:00").text
    assert since.count("data-event-id=") == 2

    rows = _csv(london_auth.client.get("/events/export.csv").get_data())
    assert rows[0][0] == "時刻 (Europe/London)"  # GMT in winter, BST in summer: named
    assert [r[0] for r in rows[1:]] == [
        "2026-04-01 00:30:00",
        "2026-03-31 21:00:00",
        "2026-03-01 00:30:00",
    ]
    audit = _csv(london_auth.client.get("/audit/export.csv").get_data())
    assert audit[0][1] == "time (Europe/London)"


def test_monthly_report_is_a_london_month(
    london: Flask, london_auth: Auth, site: Site, session_factory: sessionmaker[Session]
) -> None:
    _events(session_factory, site)
    london_auth.login("auditor")
    page = report_page(london_auth.client, "/reports/monthly?month=2026-03&area=server-room")
    assert "2026-03-01 00:00 〜 2026-04-01 00:00（Europe/London）" in page
    rows = _csv(
        london_auth.client.get("/reports/monthly.csv?month=2026-03&area=server-room").get_data()
    )
    assert ["period", "2026-03-01 00:00 – 2026-04-01 00:00 (Europe/London)"] in rows
    entries = [r for r in rows if r[:2] == ["entries_exits", "server-room"] and len(r) > 3]
    # early and late March are March in London; the 00:30 BST row on 1 April is not
    assert [(r[2], r[5]) for r in entries] == [("田中 一郎", "2")]
