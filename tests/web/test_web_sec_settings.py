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
