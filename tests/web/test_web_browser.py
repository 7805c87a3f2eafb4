"""Real headless Chromium against the console served by waitress on a loopback port.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; never downloads a
browser. Where the controller would act (a card presented at a simulated door), a thread in
the test plays its part by answering the command row (the lead's end-to-end tests run the
real controller). On failure a screenshot is saved next to the test's tmp_path.
Set NYUTAI_SCREENSHOTS=DIR to also save the README screenshots there.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.eventlog import append_event
from db.models import Command, CommandState, Credential, Event, Presence
from db.types import utcnow
from tests.web.conftest import PASSWORD, TOTP_SEEDS, Site, totp_code

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # the visitor desk's camera: a fake device, permission granted without a prompt
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(app: Any, site: Site) -> Iterator[str]:
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=_free_port(), threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    host, port = server.effective_host, server.effective_port
    yield f"http://{host}:{port}"

    def close_all() -> None:
        # on the server's own loop: closed from here, its select() met a closed descriptor
        for channel in list(server._map.values()):
            channel.close()

    server.trigger.pull_trigger(close_all)
    thread.join(timeout=5)  # the loop ends with no channel left
    assert not thread.is_alive(), "the console server did not stop"
    server.task_dispatcher.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(
    browser: Any, live_server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Any]:
    # depends on live_server so the page (and its polling) closes before the server stops
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, locale="ja-JP", accept_downloads=True
    )
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        shot = tmp_path / f"{request.node.name}.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"screenshot on failure: {shot}")
    context.close()


def login(page: Any, base: str, username: str, app: Any = None) -> None:
    """Sign in through the form; administrators and managers type their TOTP code too."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    if username in TOTP_SEEDS:
        page.wait_for_url(f"{base}/login/mfa**")
        page.fill("#mfa-code", totp_code(app, username, TOTP_SEEDS[username]))
        page.click("#mfa-submit")
    page.wait_for_url(f"{base}/dashboard")


def readme_shot(page: Any, name: str) -> None:
    target = os.environ.get("NYUTAI_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / name), full_page=True)


def test_guard_registers_a_visitor_and_signs_them_out(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    login(page, live_server, "guard")
    page.click("text=来訪者")
    page.fill("#visit-form input[name=name]", "山田 太郎")
    page.fill("#visit-form input[name=organization]", "保守サービス株式会社")
    page.check("#visit-form input[name=id_checked]")
    page.select_option("#visit-form select[name=id_kind]", "drivers_license")
    page.fill("#visit-form input[name=purpose]", "サーバ保守")
    # the page renders the first area's escorts only (the My Number room, first by code);
    # choosing another area fetches its escorts (escorts.json) in place of those
    assert page.locator(f'#visit-escort option[data-area="{site.mynumber_room}"]').count()
    assert not page.locator(f'#visit-escort option[data-area="{site.server_room}"]').count()
    page.select_option("#visit-area", str(site.server_room))
    page.wait_for_selector(
        f'#visit-escort option[data-area="{site.server_room}"][value="{site.tanaka}"]',
        state="attached",
    )
    assert not page.locator(
        f'#visit-escort option[data-area="{site.mynumber_room}"]:not([disabled])'
    ).count()
    # typing part of a name searches the chosen area's escorts (at most 50 from the server):
    # 鈴木 is not eligible (training too old), 田中 is
    picker = page.locator("#visit-form input.picker[data-picker-target=visit-escort]")
    picker.fill("鈴木")
    page.locator("#visit-escort-status", has_text=": 0").wait_for()
    assert page.locator("#visit-escort option:not([value=''])").count() == 0
    picker.fill("田中")
    page.locator("#visit-escort-status", has_text=": 1").wait_for()
    assert page.locator("#visit-escort option:not([value=''])").count() == 1
    page.select_option(
        "#visit-escort",
        element=page.query_selector(
            f'#visit-escort option[data-area="{site.server_room}"][value="{site.tanaka}"]'
        ),
    )
    page.select_option("select[name=device_kind_1]", "maintenance-laptop")
    page.fill("input[name=device_serial_1]", "SN-123")
    page.click("#register-visit")
    visit = page.locator("li.visit", has_text="山田 太郎")
    visit.wait_for()
    assert "保守用ノートPC (SN-123)" in visit.inner_text()
    visit.locator("input[name=card_id]").fill("0102030405069999")
    visit.locator("input[name=label]").fill("V-01")
    visit.locator("button.issue-badge").click()
    page.locator("li.visit", has_text="山田 太郎").locator(".badge-issued").wait_for()
    readme_shot(page, "visitors.png")
    # the host filter searches as you type too: 田中 hosts no visit, so filtering by them
    # hides this one, and the filter still names them after the reload
    host_picker = page.locator("#visit-filter input.picker[data-picker-target=filter-host]")
    host_picker.fill("田中")
    page.wait_for_selector(f'#filter-host option[value="{site.tanaka}"]', state="attached")
    page.select_option("#filter-host", str(site.tanaka))
    page.click("#apply-visit-filter")
    page.wait_for_url(f"**host={site.tanaka}**")
    assert page.locator("li.visit", has_text="山田 太郎").count() == 0
    assert page.locator("#filter-host").input_value() == str(site.tanaka)
    page.goto(f"{live_server}/visitors/")
    visit = page.locator("li.visit", has_text="山田 太郎")
    visit.locator("input[name=devices_confirmed]").check()
    visit.locator("button.sign-out").click()
    page.locator(".flash.info", has_text="バッジを回収しました").wait_for()
    assert page.locator("li.visit", has_text="山田 太郎").count() == 0
    with session_factory() as s:
        badge = s.scalars(select(Credential).where(Credential.card_id == "0102030405069999")).one()
        assert badge.state == "returned" and badge.temporary


def test_manager_filters_the_log_and_downloads_csv(
    page: Any, live_server: str, site: Site, session_factory: Any, app: Any
) -> None:
    with session_factory() as s:
        for i in range(30):
            append_event(
                s,
                Event(
                    occurred_at=utcnow(),
                    kind="presentation",
                    direction="in",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    person_id=site.tanaka if i % 2 else site.sato,
                    decision="granted" if i % 2 else "denied",
                    reason="granted" if i % 2 else "not_designated",
                ),
            )
        s.commit()
    login(page, live_server, "manager", app)
    page.click("text=入退室記録")
    page.select_option("select[name=decision]", "denied")
    page.click("#apply-filter")
    page.wait_for_url("**decision=denied**")
    rows = page.locator("#event-table tbody tr")
    assert rows.count() == 15
    assert (
        "佐藤 次郎" in rows.first.inner_text()
        and "田中" not in page.locator("#event-table").inner_text()
    )
    with page.expect_download() as info:
        page.click("#csv-export")
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(table) == 16 and all(r[7] == "拒否" for r in table[1:])
    assert table[1][2] == "サーバ室" and table[1][4] == "入室"
    assert table[1][9] == "特定個人情報の取扱者として指定されていません。"


def _play_controller(factory: Any, site: Site, stop: threading.Event) -> None:
    """The controller's part for one tap: an event row, presence, the command marked done."""
    while not stop.is_set():
        with factory() as s:
            cmd = s.scalars(select(Command).where(Command.state == CommandState.QUEUED)).first()
            if cmd is not None and cmd.kind == "tap":
                ev = append_event(
                    s,
                    Event(
                        occurred_at=utcnow(),
                        kind="presentation",
                        reader=cmd.payload["reader"],
                        direction="in",
                        door_id=site.sr_door,
                        area_id=site.server_room,
                        person_id=site.tanaka,
                        decision="granted",
                        reason="granted",
                        raw_card_id=cmd.payload["card"],
                    ),
                )
                s.add(
                    Presence(
                        person_id=site.tanaka,
                        area_id=site.server_room,
                        entered_at=utcnow(),
                        event_id=ev.id,
                    )
                )
                cmd.state, cmd.processed_at = CommandState.DONE, utcnow()
                s.commit()
                return
        time.sleep(0.1)


def test_dashboard_shows_a_simulated_presentation_without_reload(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    login(page, live_server, "guard")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("#latest-events").inner_text().count("田中 一郎") == 0
    sim = page.context.new_page()
    sim.goto(f"{live_server}/simulator/")
    stop = threading.Event()
    controller = threading.Thread(target=_play_controller, args=(session_factory, site, stop))
    controller.start()
    try:
        door = sim.locator("#door-server-room-door form.tap").first
        door.locator("select[name=card]").select_option("felica:0102030405060708")
        door.locator("button.present").click()
        sim.locator(".flash.info").wait_for()
        page.bring_to_front()
        page.locator("#latest-events", has_text="田中 一郎").wait_for(timeout=10_000)
    finally:
        stop.set()
        controller.join()
    assert page.evaluate("window.__notReloaded") is True  # updated in place, not reloaded
    assert page.locator('[data-area="server-room"]').inner_text() == "1"
    if os.environ.get("NYUTAI_SCREENSHOTS"):
        _busy_day(session_factory, site)
        page.wait_for_timeout(3000)  # the next refresh brings the new rows in
        readme_shot(page, "dashboard.png")


def _busy_day(factory: Any, site: Site) -> None:
    """More rows for the README picture: a visitor with escort, an alarm, a day of entries."""
    from datetime import timedelta

    from db.models import Alarm, DeviceStatus, Person, PersonKind

    now = utcnow()
    with factory() as s:
        visitor = Person(kind=PersonKind.VISITOR, name="山田 太郎", organization="保守サービス")
        s.add(visitor)
        s.flush()
        s.add(
            Presence(
                person_id=visitor.id,
                area_id=site.server_room,
                entered_at=now,
                escort_person_id=site.tanaka,
            )
        )
        s.add(Presence(person_id=site.suzuki, area_id=site.mynumber_room, entered_at=now))
        s.add(Alarm(kind="door_held", door_id=site.mn_door, raised_at=now))
        for kind, key, state in (
            ("reader", "sr-in", "online"),
            ("reader", "sr-out", "online"),
            ("reader", "mn-front-in", "online"),
            ("door", "server-room-door", "locked"),
            ("door", "mynumber-front", "held"),
        ):
            s.add(DeviceStatus(kind=kind, key=key, state=state, updated_at=now))
        for i in range(40):
            append_event(
                s,
                Event(
                    occurred_at=now - timedelta(minutes=7 * i),
                    kind="presentation",
                    direction="in",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    person_id=site.tanaka,
                    decision="granted",
                    reason="granted",
                ),
            )
        append_event(
            s,
            Event(
                occurred_at=now,
                kind="presentation",
                direction="in",
                door_id=site.sr_door,
                area_id=site.server_room,
                person_id=visitor.id,
                visitor=True,
                escort_person_id=site.tanaka,
                decision="granted",
                reason="granted_escorted",
                purpose="サーバ保守",
            ),
        )
        append_event(
            s,
            Event(
                occurred_at=now,
                kind="presentation",
                direction="in",
                door_id=site.mn_door,
                area_id=site.mynumber_room,
                person_id=site.sato,
                decision="denied",
                reason="not_designated",
            ),
        )
        s.commit()


@pytest.fixture
def mailbox() -> Iterator[Any]:
    from tests.web.visit_helpers import smtp_server

    yield from smtp_server()


def _visitor_event(s: Any, site: Site, visit: Any, direction: str) -> Any:
    """The controller's part at the server-room door: the escort's and the visitor's grants."""
    append_event(
        s,
        Event(
            occurred_at=utcnow(),
            kind="presentation",
            direction=direction,
            door_id=site.sr_door,
            area_id=site.server_room,
            person_id=site.tanaka,
            decision="granted",
            reason="granted",
        ),
    )
    return append_event(
        s,
        Event(
            occurred_at=utcnow(),
            kind="presentation",
            direction=direction,
            door_id=site.sr_door,
            area_id=site.server_room,
            person_id=visit.visitor_id,
            visitor=True,
            visit_id=visit.id,
            escort_person_id=site.tanaka,
            decision="granted",
            reason="granted_escorted",
            purpose=visit.purpose,
        ),
    )


def test_visitor_day_from_pre_registration_to_sign_out(
    page: Any,
    live_server: str,
    site: Site,
    session_factory: Any,
    app: Any,
    mailbox: Any,
    tmp_path: Path,
) -> None:
    """Pre-registration -> upcoming list -> arrival -> photo -> badge print -> the host's
    mail on the loopback SMTP server -> escort entry -> exit -> sign-out."""
    from datetime import timedelta

    from db.models import Person, Visit
    from domain.config import MailSection, SiteConfig
    from tests.web.visit_helpers import pdf_text, window
    from web.notify import BackgroundDuties

    mail = MailSection(host="127.0.0.1", port=mailbox.port, sender="desk@example.jp",
                       security="none", timeout_seconds=5)  # fmt: skip
    app.config["NYUTAI_MAIL"] = mail
    duties = BackgroundDuties(
        SiteConfig(path=tmp_path / "site.toml", data_dir=tmp_path, mail=mail), session_factory
    )
    with session_factory() as s:
        s.get(Person, site.sato).email = "host@example.jp"
        s.get(Person, site.tanaka).email = "escort@example.jp"
        s.commit()
    page.context.grant_permissions(["camera"], origin=live_server)
    login(page, live_server, "guard")
    page.click("text=来訪者")
    # pre-registration for the day after tomorrow
    start, end = window(days=2)
    page.fill("#visit-form input[name=name]", "山田 太郎")
    page.fill("#visit-form input[name=organization]", "保守サービス株式会社")
    page.fill("#visit-form input[name=purpose]", "サーバ保守")
    page.select_option("#visit-area", str(site.server_room))
    page.select_option("#visit-form select[name=host_id]", str(site.sato))
    page.wait_for_selector(  # the server room's escorts arrive from escorts.json
        f'#visit-escort option[data-area="{site.server_room}"][value="{site.tanaka}"]',
        state="attached",
    )
    page.select_option(
        "#visit-escort",
        element=page.query_selector(
            f'#visit-escort option[data-area="{site.server_room}"][value="{site.tanaka}"]'
        ),
    )
    page.fill("#visit-form input[name=expected_from]", start)
    page.fill("#visit-form input[name=expected_until]", end)
    page.click("#register-visit")
    page.locator(".flash.info", has_text="来訪予定の一覧").wait_for()
    assert "山田 太郎" in page.locator("#upcoming-list").inner_text()
    assert "山田 太郎" not in page.locator("#visit-list").inner_text()
    # the day comes: the visit's window starts now
    with session_factory() as s:
        visit = s.scalars(select(Visit)).one()
        visit.expected_from = utcnow() - timedelta(minutes=1)
        visit.expected_until = utcnow() + timedelta(hours=3)
        s.commit()
        vid = visit.id
    page.reload()
    row = page.locator(f"#visit-{vid}")
    assert "山田 太郎" in page.locator("#visit-list").inner_text()
    # arrival: the photo from the (fake) camera
    row.locator("button.camera-start").click()
    row.locator("button.camera-shoot").wait_for(state="visible")
    video = row.locator("video.camera-view")
    for _ in range(100):  # the fake camera's first frame
        if video.evaluate("v => v.videoWidth") > 0:
            break
        time.sleep(0.1)
    row.locator("button.camera-shoot").click()
    page.locator(".flash.info", has_text="写真を保存しました").wait_for()
    photo = page.locator(f"#visit-{vid} img.visitor-photo")
    assert photo.evaluate("img => img.complete && img.naturalWidth > 0")
    with session_factory() as s:
        stored = s.get(Visit, vid).photo
        assert stored is not None and stored.path.endswith(f"{stored.sha256}.jpg")
    # the badge, then its print
    row = page.locator(f"#visit-{vid}")
    row.locator("select[name=technology]").select_option("iso14443a")
    row.locator("input[name=card_id]").fill("04A1B2C3D4E5F6")
    row.locator("input[name=label]").fill("V-123")
    row.locator("button.issue-badge").click()
    page.locator(f"#visit-{vid} .badge-issued").wait_for()
    with page.expect_download() as info:
        page.locator(f"#visit-{vid} a.badge-print").click()
    text = pdf_text(Path(info.value.path()).read_bytes(), tmp_path)
    for needle in ("山田 太郎", "保守サービス株式会社", "佐藤 次郎", "田中 一郎", "V-123"):
        assert needle in text, needle
    # the host's mail: sent off the guard's request by the console's background duty
    assert mailbox.received == []
    assert duties.run_once() == (2, 0)
    (to_host,) = mailbox.to("host@example.jp")
    assert "入館バッジを発行しました" in to_host["Subject"] and "V-123" in to_host.get_content()
    # escort entry at the door (the controller's part), seen as the first entry
    with session_factory() as s:
        visit = s.get(Visit, vid)
        ev = _visitor_event(s, site, visit, "in")
        s.add(Presence(person_id=visit.visitor_id, area_id=site.server_room,
                       entered_at=utcnow(), event_id=ev.id, escort_person_id=site.tanaka,
                       visit_id=vid))  # fmt: skip
        s.commit()
    assert duties.run_once() == (2, 0)
    assert "入室しました" in mailbox.to("host@example.jp")[-1]["Subject"]
    # signing out while still inside is refused
    page.reload()
    page.locator(f"#visit-{vid} button.sign-out").click()
    page.locator(".flash.error", has_text="まだ管理区域内にいると記録されています").wait_for()
    # the dashboard shows the visitor inside, with the photo
    page.click("text=ダッシュボード")
    inside = page.locator(".occupancy li", has_text="山田 太郎")
    inside.locator("img.visitor-photo").wait_for()
    # exit with the escort (the controller's part), then the sign-out goes through
    with session_factory() as s:
        visit = s.get(Visit, vid)
        _visitor_event(s, site, visit, "out")
        for p in s.scalars(select(Presence).where(Presence.person_id == visit.visitor_id)):
            s.delete(p)
        s.commit()
    page.click("text=来訪者")
    page.locator(f"#visit-{vid} button.sign-out").click()
    page.locator(".flash.info", has_text="バッジを回収しました").wait_for()
    assert page.locator(f"#visit-{vid}").count() == 0
    with session_factory() as s:
        visit = s.get(Visit, vid)
        assert visit.signed_out_at is not None and visit.badge.state == "returned"


def test_manager_enrols_totp_and_signs_in_with_it(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    """A manager without a second factor is made to enrol at sign-in: scan (here: read the
    key), confirm with a code, keep the recovery codes; the next sign-in asks for a code."""
    import pyotp

    from db.models import Operator
    from web.accounts import hash_password

    with session_factory() as s:
        s.add(
            Operator(
                username="newmgr",
                display_name="新任 責任者",
                role="manager",
                password_hash=hash_password(PASSWORD),
            )
        )
        s.commit()
    base = live_server
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "newmgr")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/mfa/enrol**")
    assert page.locator("img.qr").get_attribute("src").startswith("data:image/svg+xml")
    page.goto(f"{base}/events/")  # nothing else opens before the enrolment
    page.wait_for_url(f"{base}/mfa/enrol**")
    seed = page.locator("#mfa-seed").inner_text().replace(" ", "")
    page.fill("#mfa-code", pyotp.TOTP(seed).now())
    page.click("#mfa-confirm")
    codes = page.locator("#recovery-codes li code")
    codes.first.wait_for()
    assert codes.count() == 10
    page.click("#recovery-done")
    page.wait_for_url(f"{base}/dashboard")
    page.click("#logout")
    page.wait_for_url(f"{base}/login")
    # the next sign-in: password, then a code from the app (the next 30-second step: the
    # enrolment used this one, and a code is accepted once)
    page.fill("input[name=username]", "newmgr")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/login/mfa**")
    totp = pyotp.TOTP(seed)
    page.fill("#mfa-code", totp.now())
    page.click("#mfa-submit")
    if "/login/mfa" in page.url:  # same 30 seconds as the enrolment: refused as a replay
        assert page.locator(".flash.error").count() == 1
        page.fill("#mfa-code", totp.at(time.time() + 30))
        page.click("#mfa-submit")
    page.wait_for_url(f"{base}/dashboard")
    page.goto(f"{base}/events/")
    assert page.locator("h1").inner_text() == "入退室記録"
