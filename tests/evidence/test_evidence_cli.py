"""The evidence commands, run through the real click group against a migrated site database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from db.approvals import Actor, ApprovalError, decide, request_approval
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import (
    ApprovalKind,
    ApprovalRequest,
    Area,
    AuditLog,
    DeletionRecord,
    Operator,
    Person,
)
from db.settings import CONTRACT_END, set_setting
from db.types import utcnow
from domain.config import load_config
from nyutai.cli import main
from tests.evidence.helpers import T0, add_events

SITE = '[site]\nname = "テスト"\n[database]\nurl = "sqlite:///nyutai.db"\n'


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from _site(tmp_path, T0)


def _site(tmp_path: Path, start: datetime):  # type: ignore[no-untyped-def]
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    cfg = load_config(path)
    upgrade(cfg.database_url)
    eng = make_engine(cfg.database_url)
    factory = make_session_factory(eng)
    with factory.begin() as s:
        s.add(Area(code="server-room", name="サーバ室"))
        s.add(Operator(username="mgr", display_name="責任者", role="manager", password_hash="x"))
        s.add(Operator(username="mgr2", display_name="副責任者", role="manager", password_hash="x"))
    add_events(factory, 12, start=start)
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
    res = run("report", "monthly", *cfgarg, "--month", "2026-03", "--controller", "nobody",
              "--out", str(tmp_path / "r"), ok=False)  # fmt: skip
    assert "unknown controller(s): nobody" in res.output
    run("report", "monthly", *cfgarg, "--month", "2026-03", "--controller", "main",
        "--format", "csv", "--out", str(tmp_path / "r"))  # fmt: skip
    one = (tmp_path / "r" / "monthly-2026-03-main.csv").read_text(encoding="utf-8-sig")
    assert "controllers,main のみ" in one
    res = run("purge", *cfgarg, "--log", "events", "--before", "2026-04-01", ok=False)
    assert "approval_required" in res.output  # no typed names any more: an approval or nothing
    res = run("retention", "set", *cfgarg, "--contract-end", "2026-03-31", "--approval", "1",
              ok=False)  # fmt: skip
    assert "unknown_request" in res.output
    approval = approve(factory, ApprovalKind.RETENTION,
                       {"contract_end": "2026-03-31", "channel": "cli"})  # fmt: skip
    res = run("retention", "set", *cfgarg, "--contract-end", "2026-03-30",
              "--approval", str(approval), ok=False)  # fmt: skip
    assert "params_differ" in res.output
    run("retention", "set", *cfgarg, "--contract-end", "2026-03-31", "--approval", str(approval))
    assert "2027-04-01" in run("retention", "show", *cfgarg).output
    res = run("retention", "set", *cfgarg, "--contract-end", "2026-03-31",
              "--approval", str(approval), ok=False)  # fmt: skip
    assert "(used)" in res.output
    purge_ok = approve(factory, ApprovalKind.PURGE, {"log": "events", "before": "2026-04-01"})
    res = run("purge", *cfgarg, "--log", "events", "--before", "2026-04-01",
              "--approval", str(purge_ok), ok=False)  # fmt: skip
    assert "inside_retention" in res.output
    with factory() as s:
        actions = [a for (a,) in s.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
        assert actions == [
            "approval.request",
            "approval.approve",
            "setting.update",
            "approval.done",
            "approval.request",
            "approval.approve",
            "retention.purge_refused",
        ]
        row = s.scalars(select(AuditLog).where(AuditLog.action == "setting.update")).one()
        assert row.after == {
            "value": "2026-03-31",
            "approval": approval,
            "requested_by": "mgr",
            "approved_by": "mgr2",
        }
        # a refused purge leaves the approval unused
        assert s.get(ApprovalRequest, purge_ok).state == "approved"


def approve(
    factory, kind: str, params: dict, requester: str = "mgr", approver: str = "mgr2",
    when: datetime | None = None,
) -> int:  # type: ignore[no-untyped-def]  # fmt: skip
    """What the console does when one manager asks and another approves (db.approvals)."""
    with factory.begin() as s:
        ops = {o.username: Actor.of(o) for o in s.scalars(select(Operator))}
        req = request_approval(s, kind, params, ops[requester], "テスト", now=when)
        decide(s, req.id, ops[approver], True, now=when)
        return req.id


@pytest.fixture
def old_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Records from 2020 under a contract that ended 2020-03-31: purgeable today."""
    made = _site(tmp_path, datetime(2020, 1, 1, tzinfo=UTC))
    path, factory, eng = next(made)
    with factory.begin() as s:
        set_setting(s, CONTRACT_END, "2020-03-31")
    run("keys", "generate", "--config", str(path))
    yield path, factory
    eng.dispose()


def test_purge_acts_on_a_console_approval_once(old_site) -> None:  # type: ignore[no-untyped-def]
    path, factory = old_site
    cfgarg = ("--config", str(path), "--log", "events", "--before", "2020-01-02")
    params = {"log": "events", "before": "2020-01-02"}
    with factory.begin() as s:  # asked but not approved: refused
        mgr = Actor.of(s.scalars(select(Operator).where(Operator.username == "mgr")).one())
        pending = request_approval(s, ApprovalKind.PURGE, params, mgr, "契約終了").id
    assert "not_approved" in run("purge", *cfgarg, "--approval", str(pending), ok=False).output
    with factory.begin() as s:  # the requester cannot approve their own
        with pytest.raises(ApprovalError) as exc:
            decide(s, pending, mgr, True)
        assert exc.value.code == "same_person"
    old = approve(factory, ApprovalKind.PURGE, {"log": "events", "before": "2020-01-03"},
                  when=utcnow() - timedelta(days=2))  # fmt: skip
    res = run("purge", "--config", str(path), "--log", "events", "--before", "2020-01-03",
              "--approval", str(old), ok=False)  # fmt: skip
    assert "expired" in res.output
    with factory.begin() as s:
        mgr2 = Actor.of(s.scalars(select(Operator).where(Operator.username == "mgr2")).one())
        decide(s, pending, mgr2, True)
    wrong = run("purge", "--config", str(path), "--log", "audit", "--before", "2020-01-02",
                "--approval", str(pending), ok=False)  # fmt: skip
    assert "params_differ" in wrong.output
    out = run("purge", *cfgarg, "--approval", str(pending)).output
    assert "purged" in out
    again = run("purge", *cfgarg, "--approval", str(pending), ok=False)
    assert "(used)" in again.output
    with factory() as s:
        rec = s.scalars(select(DeletionRecord)).one()
        ops = {o.id: o.username for o in s.scalars(select(Operator))}
        assert (ops[rec.requested_by], ops[rec.approved_by]) == ("mgr", "mgr2")
        req = s.get(ApprovalRequest, pending)
        assert req.state == "done" and req.result == {"deletion_record": rec.id}


def test_review_commands(site) -> None:  # type: ignore[no-untyped-def]
    path, factory, _ = site
    assert "nothing to review" in run("review", "list", "--config", str(path)).output
    with factory.begin() as s:
        person = Person(name="山田", designated=True)
        s.add(person)
        s.flush()
        person_id = person.id
    base = ("review", "decide", "--config", str(path), "--person", str(person_id))
    # no typed operator name: --approval is required
    res = run(*base, "--operator", "mgr", "--decision", "revoke", ok=False)
    assert "--approval" in res.output or "No such option" in res.output
    approval = approve(factory, ApprovalKind.REVIEW, {"decision": "revoke", "person_id": person_id})
    res = run(*base, "--decision", "keep", "--approval", str(approval), ok=False)
    assert "params_differ" in res.output
    run(*base, "--decision", "revoke", "--approval", str(approval))
    assert "(used)" in run(*base, "--decision", "revoke", "--approval", str(approval),
                           ok=False).output  # fmt: skip
    with factory() as s:
        assert s.get(Person, person_id).designated is False
        row = s.scalars(
            select(AuditLog).where(AuditLog.action == "review.designation_revoke")
        ).one()
        assert row.username == "mgr" and f"approval {approval}" in row.after["note"]


def _verify_on_pty(path: Path, *extra: str) -> tuple[int, str]:
    return _on_pty("verify", "--config", str(path), *extra)


def _on_pty(*args: str) -> tuple[int, str]:
    """Run ``nyutai ARGS`` in a child process whose stderr is a real pseudo-terminal."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nyutai", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode()


def test_verify_shows_progress_on_a_terminal_only(site) -> None:  # type: ignore[no-untyped-def]
    path, _factory, _eng = site
    rc, err = _verify_on_pty(path)
    assert rc == 0
    assert "events: 12/12 rows (100%)" in err and "rows/s" in err and "total" in err
    rc, err = _verify_on_pty(path, "--quiet")
    assert rc == 0 and "rows/s" not in err
    out = run("verify", "--config", str(path)).output  # not a terminal: no progress line
    assert "rows/s" not in out and "events: 12 rows" in out


def test_monthly_report_shows_its_steps_on_a_terminal_only(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _factory, _eng = site
    month = datetime.now(UTC).strftime("%Y-%m")
    args = ("report", "monthly", "--config", str(path), "--month", month, "--format", "csv")
    rc, err = _on_pty(*args, "--out", str(tmp_path / "a"))
    assert rc == 0, err
    assert "monthly report: 1/" in err and "steps (month start)" in err, err
    assert "monthly report: done in" in err
    rc, err = _on_pty(*args, "--out", str(tmp_path / "b"), "--quiet")
    assert rc == 0 and "steps" not in err, err
    out = run(*args, "--out", str(tmp_path / "c")).output  # not a terminal: no progress line
    assert "steps" not in out and "wrote" in out


def test_progress_line() -> None:
    from nyutai.progress import line

    assert line("events", 120_000, 840_000, 2.0) == (
        "events: 120,000/840,000 rows (14%)  60,000 rows/s  0:12 left"
    )
    assert line("audit", 0, 0, 0.0) == "audit: 0/0 rows  0 rows/s  0:00 total"
    assert line("events", 5, 10, 0.0).endswith("time left unknown")


def test_purge_acts_on_the_chosen_controllers_chain(old_site) -> None:  # type: ignore[no-untyped-def]
    """An approved purge of ``events@bldg-b`` removes that chain's old rows only: the
    default chain's rows of the same days stay, and every chain still verifies."""
    from db.eventlog import append_event
    from db.models import Event

    path, factory = old_site
    with factory() as s:
        for i in range(6):
            append_event(
                s,
                Event(
                    controller="bldg-b",
                    occurred_at=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=6 * i),
                    kind="presentation",
                    decision="granted",
                    reason="granted",
                    reader="srb-in",
                    direction="in",
                ),
            )
        s.commit()

    def counts() -> dict[str, int]:
        with factory() as s:
            rows = s.execute(text("SELECT controller, count(*) FROM events GROUP BY controller"))
            return {c: n for c, n in rows}

    before = counts()
    assert before == {"main": 12, "bldg-b": 6}
    params = {"log": "events@bldg-b", "before": "2020-01-02"}
    ok = approve(factory, ApprovalKind.PURGE, params)
    wrong = run("purge", "--config", str(path), "--log", "events", "--before", "2020-01-02",
                "--approval", str(ok), ok=False)  # fmt: skip
    assert "params_differ" in wrong.output
    out = run("purge", "--config", str(path), "--log", "events@bldg-b", "--before",
              "2020-01-02", "--approval", str(ok)).output  # fmt: skip
    assert "purged" in out
    # bldg-b's rows before 2020-01-02 in the site's zone (Asia/Tokyo: 15:00 UTC) are gone,
    # three of them; the default chain's rows of the same hours are untouched
    assert counts() == {"main": 12, "bldg-b": 3}
    with factory() as s:
        rec = s.scalars(select(DeletionRecord)).one()
        assert (rec.log, rec.row_count) == ("events@bldg-b", 3)
    verify = run("verify", "--config", str(path)).output
    assert "events@bldg-b" in verify and "OK" in verify
