"""Issue 13 in a real browser (Debian's chromium): the administrator's site settings as typed
fields (date, number, time, checkboxes) with help, the four-eyes rule for retention and the
contract end, and permitted devices ticked from the site's device kinds."""

# ruff: noqa: F811 - the fixtures are shared with test_web_browser by import
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from db.models import ApprovalRequest, Area, SiteSetting
from tests.web.conftest import Site
from tests.web.test_web_browser import (  # noqa: F401 - fixtures
    browser,
    live_server,
    login,
    page,
    pytest_runtest_makereport,
    pytestmark,
)


def test_administrator_edits_site_settings_in_typed_fields(
    page: Any, live_server: str, site: Site, session_factory: Any, app: Any
) -> None:
    login(page, live_server, "administrator", app)
    page.goto(f"{live_server}/admin/")
    settings = page.locator("#site-settings")
    assert page.get_attribute("#setting-contract_end-value", "type") == "date"
    assert page.get_attribute("#setting-retention_years-value", "type") == "number"
    assert page.get_attribute("#setting-end_of_day-value", "type") == "time"
    assert "終業時刻" in settings.inner_text() and "End of day" in settings.inner_text()
    # the day end is saved at once
    page.fill("#setting-end_of_day-value", "19:30")
    page.click("#setting-end_of_day button")
    page.locator(".flash.info").wait_for()
    assert page.input_value("#setting-end_of_day-value") == "19:30"
    # the browser itself refuses a retention out of range (the field's min/max) ...
    page.fill("#setting-retention_years-value", "0")
    page.click("#setting-retention_years button")
    assert (
        page.evaluate("document.getElementById('setting-retention_years-value').validity.valid")
        is False
    )
    # ... and a good one becomes an approval request, not a change
    page.fill("#setting-retention_years-value", "7")
    page.click("#setting-retention_years button")
    page.locator(".flash").first.wait_for()
    page.goto(f"{live_server}/admin/")
    page.fill("#setting-contract_end-value", "2028-03-31")
    page.click("#setting-contract_end button")
    page.locator(".flash").first.wait_for()
    page.goto(f"{live_server}/admin/")
    pending = page.locator("#setting-retention_years .pending").inner_text()
    assert "7" in pending
    assert "2028-03-31" in page.locator("#setting-contract_end .pending").inner_text()
    with session_factory() as s:
        assert {r.key: r.value for r in s.scalars(select(SiteSetting))} == {"end_of_day": "19:30"}
        asked = [
            {k: v for k, v in r.params.items() if k != "channel"}
            for r in s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id))
        ]
        assert asked == [{"retention_years": 7}, {"contract_end": "2028-03-31"}]
    # permitted devices: ticked from the device kinds
    form = page.locator("form.area-form", has=page.locator("h3", has_text="server-room"))
    form.locator("input[name=permitted_devices][value=usb-memory]").check()
    form.locator("input[name=permitted_devices][value=maintenance-laptop]").uncheck()
    form.locator("button").click()
    page.locator(".flash.info").wait_for()
    with session_factory() as s:
        assert s.get(Area, site.server_room).permitted_devices == ["usb-memory"]
