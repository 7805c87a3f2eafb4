"""Issue 12, defect 1: one validation path for every way a site setting is written.

The web form used to store any JSON (``retention_years = -100`` was accepted while the CLI
refused it); a purge could then delete the running contract's records, and a bad
``end_of_day`` made the monthly report page a 500.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from db.approvals import Actor, decide, request_approval
from db.engine import make_engine, make_session_factory
from db.models import ApprovalKind, ApprovalRequest, AuditLog, Operator, SiteSetting
from db.types import utcnow
from tests.web.conftest import Auth, Site

BAD_WEB_VALUES = [
    ("retention_years", "-100"),
    ("retention_years", "0"),
    ("retention_years", "1000"),
    ("retention_years", "2.5"),
    ("retention_years", "true"),
    ("contract_end", '"not-a-date"'),
    ("contract_end", '"20270331"'),  # date.fromisoformat takes it; the rule is YYYY-MM-DD
    ("contract_end", "5"),
    ("contract_end", '"1900-01-01"'),
    ("end_of_day", '"not-a-time"'),
    ("end_of_day", '"25:00"'),
    ("end_of_day", '"20:00:00.5"'),
    ("end_of_day", "20"),
    ("no_such_setting", "1"),
]


def _settings(session_factory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return {r.key: r.value for r in s.scalars(select(SiteSetting))}


@pytest.mark.parametrize(("key", "value"), BAD_WEB_VALUES)
def test_the_web_refuses_what_the_rules_refuse(
    app: Flask, site: Site, session_factory, key: str, value: str
) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    resp = admin.post("/admin/settings", {"key": key, "value": value}, page="/admin/")
    assert resp.status_code == 302
    page = admin.client.get(resp.headers["Location"]).text
    assert "保存しませんでした" in page  # "The setting was not saved: ..."
    assert _settings(session_factory) == {}
    with session_factory() as s:
        assert s.scalars(select(AuditLog).where(AuditLog.action == "setting.update")).all() == []


def test_the_web_stores_good_values_normalised(app: Flask, site: Site, session_factory) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    for key, value in (
        ("retention_years", "5"),
        ("contract_end", "2027-03-31"),  # plain text is fine too
        ("end_of_day", '"19:30"'),
        ("contract_end", "null"),  # unknown again: nothing may be purged
    ):
        resp = admin.post("/admin/settings", {"key": key, "value": value}, page="/admin/")
        assert resp.status_code == 302
    # the day end is stored at once; retention and contract end wait for a second person,
    # asked for with the normalised values
    assert _settings(session_factory) == {"end_of_day": "19:30"}
    with session_factory() as s:
        asked = [r.params for r in s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id))]
    assert [{k: v for k, v in p.items() if k != "channel"} for p in asked] == [
        {"retention_years": 5},
        {"contract_end": "2027-03-31"},
        {"contract_end": None},
    ]


def test_the_cli_applies_the_same_rules(tmp_path: Path, db_url: str, site: Site) -> None:
    from nyutai.cli import main

    cfg = tmp_path / "site.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    runner = CliRunner()
    base = ["retention", "set", "--config", str(cfg), "--approval"]
    for args, rule in (
        (["--years", "-100"], "retention_years_range"),
        (["--years", "1000"], "retention_years_range"),
        (["--contract-end", "20270331"], "contract_end_date"),
    ):
        out = runner.invoke(main, [*base, "999", *args])
        assert out.exit_code != 0 and rule in out.output, out.output
    # good values, approved by two managers in the console (db.approvals), are stored
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as s:
        ops = {o.username: Actor.of(o) for o in s.scalars(select(Operator))}
        params = {"retention_years": 5, "contract_end": "2027-03-31", "channel": "cli"}
        req = request_approval(s, ApprovalKind.RETENTION, params, ops["manager"], "契約")
        decide(s, req.id, ops["manager2"], True)
        approval = req.id
    engine.dispose()
    ok = runner.invoke(main, [*base, str(approval), "--years", "5", "--contract-end", "2027-03-31"])
    assert ok.exit_code == 0, ok.output


def test_a_bad_stored_value_does_not_break_the_report_or_allow_a_purge(
    app: Flask, site: Site, session_factory
) -> None:
    """Rows written before the rules existed (or by hand in the database) are read safely."""
    from db.retention import check_allowed

    today = utcnow()
    with session_factory() as s:
        s.add_all(
            [
                SiteSetting(key="end_of_day", value="not-a-time", updated_at=today),
                SiteSetting(key="retention_years", value=-100, updated_at=today),
                SiteSetting(
                    key="contract_end",
                    value=(today - timedelta(days=3)).date().isoformat(),
                    updated_at=today,
                ),
            ]
        )
        s.commit()
    manager = Auth(app.test_client())
    manager.login("manager")
    assert manager.client.get("/reports/monthly").status_code == 200
    with session_factory() as s:
        refusal = check_allowed(s, today - timedelta(days=4), today, ZoneInfo("Asia/Tokyo"))
    assert refusal is not None and refusal[0] == "setting_invalid"


def test_the_settings_form_has_a_typed_field_with_help_for_every_setting(
    app: Flask, site: Site
) -> None:
    """Issue 13: no raw JSON any more; each setting its own input, its words ja + en."""
    import re

    admin = Auth(app.test_client())
    admin.login("administrator")
    page = admin.client.get("/admin/").get_data(as_text=True)
    section = page.split('id="site-settings"')[1]
    for key, kind in (
        ("contract_end", "date"),
        ("retention_years", "number"),
        ("end_of_day", "time"),
    ):
        field = re.search(rf'id="setting-{key}-value"[^>]*>', section)
        assert field and f'type="{kind}"' in field.group(0), key
        assert f'id="setting-{key}-help"' in section
    assert 'min="1" max="30"' in section  # the retention limits of db.settings
    assert "契約終了日" in section and "Contract end" in section  # Japanese first, English too
    assert "保存期間（年）" in section and "終業時刻" in section
    assert 'name="unknown"' in section and "未定" in section
    assert "tojson" not in section and 'placeholder="2027-03-31' not in section


def test_contract_end_unknown_is_a_checkbox_and_an_empty_date_is_refused(
    app: Flask, site: Site, session_factory
) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    resp = admin.post("/admin/settings", {"key": "contract_end", "value": ""}, page="/admin/")
    assert "保存しませんでした" in admin.client.get(resp.headers["Location"]).text
    with session_factory() as s:
        assert s.scalars(select(ApprovalRequest)).all() == []
    admin.post(
        "/admin/settings", {"key": "contract_end", "value": "", "unknown": "1"}, page="/admin/"
    )
    admin.post("/admin/settings", {"key": "end_of_day", "value": "18:45"}, page="/admin/")
    with session_factory() as s:
        asked = [r.params for r in s.scalars(select(ApprovalRequest))]
        assert [p["contract_end"] for p in asked] == [None]
    assert _settings(session_factory) == {"end_of_day": "18:45"}
    page = admin.client.get("/admin/").get_data(as_text=True)
    assert 'value="18:45"' in page  # the field shows the stored value
    assert "承認待ち" in page.split('id="setting-contract_end"')[1].split("</form>")[0]


def test_permitted_devices_are_chosen_from_the_device_kinds(
    app: Flask, site: Site, session_factory
) -> None:
    from db.models import Area

    admin = Auth(app.test_client())
    admin.login("administrator")
    page = admin.client.get("/admin/").get_data(as_text=True)
    assert page.count('name="permitted_devices" value="usb-memory"') == 2  # per area
    base = {
        "name": "サーバ室",
        "antipassback": "enforce",
        "escort_policy": "any",
        "max_visitors_per_escort": "3",
    }
    # an unknown kind: refused with a message, nothing saved
    client = admin.client
    token = admin.token("/admin/")
    resp = client.post(
        f"/admin/areas/{site.server_room}",
        data={**base, "csrf_token": token, "permitted_devices": ["laptop", "<b>flamethrower</b>"]},
    )
    assert "機器の種類の一覧から選んでください" in client.get(resp.headers["Location"]).text
    with session_factory() as s:
        assert s.get(Area, site.server_room).permitted_devices == ["maintenance-laptop"]
    client.post(
        f"/admin/areas/{site.server_room}",
        data={**base, "csrf_token": token, "permitted_devices": ["usb-memory", "laptop"]},
    )
    with session_factory() as s:
        assert s.get(Area, site.server_room).permitted_devices == ["laptop", "usb-memory"]
    # nothing ticked: nothing may be brought in
    client.post(f"/admin/areas/{site.server_room}", data={**base, "csrf_token": token})
    with session_factory() as s:
        assert s.get(Area, site.server_room).permitted_devices == []


def test_area_and_door_names_are_labelled_as_names_of_places_in_the_audit_log(
    app: Flask, site: Site
) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    admin.post(
        f"/admin/areas/{site.server_room}",
        {
            "name": "第一サーバ室",
            "antipassback": "enforce",
            "escort_policy": "any",
            "max_visitors_per_escort": "3",
            "permitted_devices": "maintenance-laptop",
        },
        page="/admin/",
    )
    admin.post(
        f"/admin/doors/{site.sr_door}",
        {
            "name": "第一サーバ室 扉",
            "strike_seconds": "5",
            "held_open_seconds": "30",
            "pin_timeout_seconds": "10",
            "escort_window_seconds": "10",
        },
        page="/admin/",
    )
    log = admin.client.get("/audit/").get_data(as_text=True)
    assert "管理区域名" in log and "扉の名称" in log and "第一サーバ室" in log
    assert "氏名" not in log
    page = admin.client.get("/admin/").get_data(as_text=True)
    assert "管理区域名" in page and "扉の名称" in page  # the form's labels
