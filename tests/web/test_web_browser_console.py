"""Issue 13 in a real browser (Debian's chromium): the staff CSV import from an Excel cp932
file with preview then confirm, and the alarm banner pushed by server-sent events."""

# ruff: noqa: F811 - the fixtures are shared with test_web_browser by import
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from db.models import Alarm, Person
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


def test_manager_imports_staff_from_an_excel_cp932_file(
    page: Any, live_server: str, site: Site, session_factory: Any, tmp_path: Path, app: Any
) -> None:
    lines = [
        "社員番号,氏名,フリガナ,所属,取扱者指定,研修受講日,カードID",
        "E500,髙橋　一郎,タカハシ イチロウ,情報システム課,1,2026/1/15,0102030405060A0B",
        "E501,渡邉 恵,ワタナベ メグミ,業務課,0,,",
    ]
    csv_file = tmp_path / "職員.csv"
    csv_file.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))  # as Excel saves it
    login(page, live_server, "manager", app)
    page.click("text=人物とカード")
    page.click("#people-import")
    page.set_input_files("#import-form input[name=file]", str(csv_file))
    page.click("#import-preview")
    page.locator("#import-preview-result").wait_for()
    assert page.locator("#import-created").inner_text() == "2"
    assert page.locator("#import-problems").inner_text() == "0"
    assert "髙橋 一郎" in page.locator("#import-table").inner_text()
    with session_factory() as s:  # nothing saved by the preview
        assert s.scalars(select(Person).where(Person.employee_no == "E500")).first() is None
    page.click("#import-confirm")
    page.locator(".flash.info", has_text="新規 2 件").wait_for()
    page.fill("input[name=q]", "たかはし")  # kana search finds the imported person
    page.click("form.filters button")
    assert "髙橋 一郎" in page.locator("#people-table").inner_text()
    with session_factory() as s:
        p = s.scalars(select(Person).where(Person.employee_no == "E500")).one()
        assert p.designated and p.organization == "情報システム課"


def test_alarm_banner_appears_on_another_page_and_goes_when_acknowledged(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    login(page, live_server, "guard")
    page.click("text=来訪者")
    banner = page.locator("#alarm-banner")
    assert banner.is_hidden()
    with session_factory() as s:
        alarm = Alarm(kind="door_forced", door_id=site.sr_door, raised_at=utcnow())
        s.add(alarm)
        s.commit()
        alarm_id = alarm.id
    banner.wait_for(state="visible")
    assert "扉のこじ開け" in banner.inner_text() and "サーバ室 扉" in banner.inner_text()
    assert banner.get_attribute("data-sounding") == "1"  # guards hear it
    with session_factory() as s:  # what the controller does when it carries out the ack
        s.execute(update(Alarm).where(Alarm.id == alarm_id).values(state="acknowledged"))
        s.commit()
    banner.wait_for(state="hidden")
    assert banner.get_attribute("data-sounding") == ""


def test_alarms_page_updates_by_itself(
    page: Any, live_server: str, site: Site, session_factory: Any
) -> None:
    login(page, live_server, "guard")
    page.goto(f"{live_server}/alarms/")
    assert page.locator("#alarm-table tr.alarm").count() == 0
    with session_factory() as s:
        s.add(Alarm(kind="tamper", door_id=site.mn_door, raised_at=utcnow()))
        s.commit()
    page.locator("#alarm-table tr.alarm", has_text="機器のいたずら").wait_for()
    assert "処理室 正面扉" in page.locator("#alarm-table").inner_text()
