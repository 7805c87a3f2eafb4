"""Issue 13, "reports that agree with themselves", in a real browser (Debian's chromium): a
visitor whose badge was granted twice but whose door opened once counts one entry in the
monthly report's summary, its per-person table, its visitors table and its CSV."""

# ruff: noqa: F811 - the fixtures are shared with test_web_browser by import
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from db.eventlog import append_event
from db.models import Event, Person, Visit
from tests.web.conftest import Site
from tests.web.test_web_browser import (  # noqa: F401 - fixtures
    browser,
    live_server,
    login,
    page,
    pytest_runtest_makereport,
    pytestmark,
)

AT = datetime(2026, 5, 12, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo


def _seed(factory: Any, site: Site) -> int:
    with factory() as s:
        visitor = Person(name="来訪 一郎", kind="visitor", organization="保守会社")
        s.add(visitor)
        s.flush()
        visit = Visit(
            visitor_id=visitor.id,
            area_id=site.server_room,
            purpose="保守",
            host_id=site.tanaka,
            escort_id=site.tanaka,
            expected_from=AT - timedelta(hours=1),
            expected_until=AT + timedelta(hours=6),
            signed_in_at=AT - timedelta(minutes=5),
        )
        s.add(visit)
        s.flush()
        who = {
            "area_id": site.server_room,
            "door_id": site.sr_door,
            "person_id": visitor.id,
            "visitor": True,
            "visit_id": visit.id,
            "kind": "presentation",
        }

        def row(minutes: float, **kw: Any) -> Event:
            return append_event(s, Event(occurred_at=AT + timedelta(minutes=minutes), **who, **kw))

        row(0, direction="in", decision="granted", reason="granted")  # the door opened
        row(30, direction="out", decision="granted", reason="exit")
        unused = row(40, direction="in", decision="granted", reason="granted")
        # the controller's row when the door of a grant never opened
        row(40.2, direction="in", decision="info", reason="not_used",
            detail={"granted_event_id": unused.id})  # fmt: skip
        s.commit()
        return visitor.id


def test_monthly_report_counts_one_entry_everywhere(
    page: Any, live_server: str, site: Site, session_factory: Any, app: Any, tmp_path: Path
) -> None:
    visitor = _seed(session_factory, site)
    login(page, live_server, "manager", app)
    page.goto(f"{live_server}/reports/monthly?month=2026-05&area=server-room")
    try:
        page.locator("#report-summary").wait_for(timeout=60_000)  # built in the background
    except Exception as exc:  # noqa: BLE001 - what the page showed instead, for the log
        shown = page.content()[:3000]
        raise AssertionError(f"no report after 60 s ({exc}); the page:\n{shown}") from exc
    summary = page.locator("#summary-server-room")
    assert summary.locator(".entries").inner_text() == "1"
    person = page.locator(f"#person-server-room-{visitor}")
    assert person.locator(".entries").inner_text() == "1"
    assert person.locator(".exits").inner_text() == "1"
    visit = page.locator("#area-server-room .visits-table tbody tr", has_text="来訪 一郎")
    assert visit.locator("td.num").inner_text() == "1"
    assert "田中 一郎" in visit.inner_text()  # the host
    assert "2026-05-12 16:00" in visit.locator(".visit-window").inner_text()  # its end
    with page.expect_download() as info:
        page.click("#download-csv")
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    (visit_row,) = [r for r in rows if r[:2] == ["visitors", "server-room"] and "来訪 一郎" in r]
    assert visit_row[-1] == "1" and "田中 一郎" in visit_row
