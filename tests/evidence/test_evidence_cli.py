"""The evidence commands, run through the real click group against a migrated site database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Area, AuditLog, Operator
from domain.config import load_config
from nyutai.cli import main
from tests.evidence.helpers import add_events

SITE = '[site]\nname = "テスト"\n[database]\nurl = "sqlite:///nyutai.db"\n'


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    cfg = load_config(path)
    upgrade(cfg.database_url)
    eng = make_engine(cfg.database_url)
    factory = make_session_factory(eng)
    with factory.begin() as s:
        s.add(Area(code="server-room", name="サーバ室"))
        s.add(Operator(username="mgr", display_name="責任者", role="manager", password_hash="x"))
    add_events(factory, 12)
    yield path, factory, eng
    eng.dispose()


def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_keys_checkpoint_verify(site) -> None:  # type: ignore[no-untyped-def]
    path, factory, eng = site
    cfgarg = ("--config", str(path))
    out = run("keys", "generate", *cfgarg).output
    pub = out.split("public key: ")[1].split()[0]
    run("keys", "generate", *cfgarg, ok=False)  # never silently replaced
    assert "events: seq 12" in run("checkpoint", *cfgarg).output
    out = run("verify", *cfgarg).output
    assert "events: 12 rows" in out and "OK" in out and pub in out
    with eng.begin() as c:
        c.execute(text("DELETE FROM events WHERE seq = 4"))
    res = run("verify", *cfgarg, ok=False)
    assert res.exit_code == 1 and "deleted at seq 4" in res.output
    assert "YYYY-MM-DD" in run("verify", *cfgarg, "--from", "03/02", ok=False).output


def test_report_and_purge_refusal(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, factory, _ = site
    cfgarg = ("--config", str(path))
    run("keys", "generate", *cfgarg)
    out = run("report", "monthly", *cfgarg, "--month", "2026-03", "--out", str(tmp_path / "r"))
    assert (tmp_path / "r" / "monthly-2026-03.csv").exists()
    assert (tmp_path / "r" / "monthly-2026-03.pdf").exists() and "wrote" in out.output
    run("report", "monthly", *cfgarg, "--month", "2026-3x", ok=False)
    res = run(
        "purge", *cfgarg, "--log", "events", "--before", "2026-04-01",
        "--requested-by", "mgr", "--approved-by", "mgr", ok=False,
    )  # fmt: skip
    assert "retention_unknown" in res.output
    run("retention", "set", *cfgarg, "--contract-end", "2026-03-31", "--operator", "mgr")
    assert "2027-04-01" in run("retention", "show", *cfgarg).output
    res = run(
        "purge", *cfgarg, "--log", "events", "--before", "2026-04-01",
        "--requested-by", "mgr", "--approved-by", "mgr", ok=False,
    )  # fmt: skip
    assert "inside_retention" in res.output
    with factory() as s:
        actions = [a for (a,) in s.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
        assert actions == [
            "retention.purge_refused",
            "setting.update",
            "retention.purge_refused",
        ]
        assert s.get(AuditLog, 2) is not None


def test_review_commands(site) -> None:  # type: ignore[no-untyped-def]
    path, *_ = site
    assert "nothing to review" in run("review", "list", "--config", str(path)).output
    run("review", "decide", "--config", str(path), "--operator", "mgr", "--decision", "keep",
        ok=False)  # fmt: skip
