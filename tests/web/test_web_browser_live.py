"""Issue 13 in a real browser (Debian's chromium): the dashboard fed by the server-sent-event
stream (no polling while the stream is up; polling only as a fallback), and remote door
control by a manager, carried out by a real controller (the controller's own code on
simulated GPIO) on the console's database."""

# ruff: noqa: F811 - the fixtures are shared with test_web_browser by import
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.eventlog import append_event
from db.models import AuditLog, Event, Presence
from db.types import utcnow
from tests.web.conftest import Site
from tests.web.test_web_browser import (  # noqa: F401 - fixtures
    browser,
    live_server,
    login,
    page,
    pytest_runtest_makereport,
    pytestmark,
)


def _controller_row(factory: Any, site: Site) -> None:
    """A granted entry as the controller writes it: a chained event row and presence."""
    with factory() as s:
        ev = append_event(
            s,
            Event(
                occurred_at=utcnow(),
                kind="presentation",
                reader="sr-in",
                direction="in",
                door_id=site.sr_door,
                area_id=site.server_room,
                person_id=site.tanaka,
                decision="granted",
                reason="granted",
                raw_card_id="0102030405060708",
            ),
        )
        s.add(
            Presence(
                person_id=site.tanaka, area_id=site.server_room, entered_at=utcnow(), event_id=ev.id
            )
        )
        s.commit()


def _count_live_fetches(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/dashboard/live" in r.url else None)
    return seen


def test_dashboard_updates_through_the_stream_without_polling(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    fetches = _count_live_fetches(page)
    login(page, live_server, "guard")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#live[data-mode=stream]")
    page.wait_for_timeout(1500)
    quiet = len(fetches)
    # longer than the fallback's poll interval (2 s) and grace (5 s): nothing is fetched
    # while nothing happens (the test app ends each stream after 0.5 s, so this also spans
    # several reconnections)
    page.wait_for_timeout(6000)
    assert len(fetches) == quiet, fetches
    assert page.get_attribute("#live", "data-mode") == "stream"
    assert "田中 一郎" not in page.locator("#latest-events").inner_text()
    _controller_row(session_factory, site)
    page.locator("#latest-events", has_text="田中 一郎").wait_for(timeout=10_000)
    assert page.locator('[data-area="server-room"]').first.inner_text() == "1"
    assert page.evaluate("window.__notReloaded") is True  # updated in place
    assert 1 <= len(fetches) - quiet <= 3  # one fetch per change (event + presence)
    assert page.get_attribute("#live", "data-mode") == "stream"


def test_dashboard_falls_back_to_polling_when_the_stream_fails(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    page.route("**/live/stream**", lambda route: route.abort())
    login(page, live_server, "guard")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#live[data-mode=poll]", timeout=10_000)
    _controller_row(session_factory, site)
    page.locator("#latest-events", has_text="田中 一郎").wait_for(timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True


@pytest.fixture
def controller(site: Site, session_factory: Any, tmp_path: Path, db_url: str) -> Iterator[Any]:
    """The real controller (demo site file, simulated GPIO) on the console's database."""
    from controller.daemon import Controller
    from domain.config import load_config
    from hardware.sim import SimBackend
    from nyutai import DEMO_SITE

    cfg = load_config(DEMO_SITE, data_dir=tmp_path / "controller")
    cfg = replace(cfg, database=replace(cfg.database, url=db_url), cameras={})
    backend = SimBackend()
    ctl = Controller(cfg, session_factory=session_factory, backend=backend)
    ctl.start()
    yield ctl
    ctl.stop()


def test_manager_locks_an_area_down_and_the_guards_dashboard_shows_it(
    browser: Any,
    page: Any,
    live_server: str,
    site: Site,
    session_factory: Any,
    controller: Any,
    app: Any,
) -> None:
    from controller.state import Call
    from readers.events import CardPresented

    guard_context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ja-JP")
    guard = guard_context.new_page()
    guard.set_default_timeout(10_000)
    try:
        login(guard, live_server, "guard")
        guard.evaluate("window.__notReloaded = true")
        guard.wait_for_selector("#live[data-mode=stream]")
        # guards see the doors page but have no controls on it
        guard.goto(f"{live_server}/doors/")
        assert guard.locator("form.lockdown-form").count() == 0
        guard.goto(f"{live_server}/dashboard")
        guard.evaluate("window.__notReloaded = true")
        guard.wait_for_selector("#live[data-mode=stream]")

        login(page, live_server, "manager", app)
        page.click("nav a[href='/doors/']")
        form = page.locator("#area-server-room form.lockdown-form")
        form.locator("input[name=reason]").fill("不審者情報のため")
        form.locator("button").click()
        page.locator(".flash.info").wait_for()
        # the controller carries it out; the guard's open dashboard shows it without reload
        banner = guard.locator("#lockdown-banner")
        banner.wait_for(timeout=15_000)
        assert "サーバ室" in banner.inner_text() and "不審者情報のため" in banner.inner_text()
        assert guard.evaluate("window.__notReloaded") is True
        # a card at the area's door is refused, and that row reaches the dashboard too
        done: list[Any] = []
        controller.queue.put(
            Call(
                lambda: done.append(
                    controller.on_card(
                        CardPresented(
                            "sr-in", "felica", "0102030405060708", time.monotonic(), utcnow()
                        )
                    )
                )
            )
        )
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done and done[0]["reason"] == "lockdown"
        guard.locator("#latest-events", has_text="閉鎖（ロックダウン）中").wait_for(timeout=10_000)
        # the doors page shows it; the manager lifts it
        page.goto(f"{live_server}/doors/")
        assert page.locator("#area-server-room [data-lockdown]").count() == 1
        lift = page.locator("#area-server-room form.lift-form")
        lift.locator("input[name=reason]").fill("警察の確認済み")
        lift.locator("button").click()
        page.locator(".flash.info").wait_for()
        banner.wait_for(state="detached", timeout=15_000)
        assert guard.evaluate("window.__notReloaded") is True
    finally:
        guard_context.close()
    with session_factory() as s:
        actions = [
            (a.action, (a.after or {}).get("reason"))
            for a in s.scalars(select(AuditLog).where(AuditLog.action.like("area.%")))
        ]
        assert actions == [
            ("area.lockdown", "不審者情報のため"),
            ("area.lockdown_lift", "警察の確認済み"),
        ]
        reasons = [
            e.reason
            for e in s.scalars(select(Event).where(Event.kind == "door_control").order_by(Event.id))
        ]
        assert reasons == ["lockdown_started", "lockdown_lifted"]
