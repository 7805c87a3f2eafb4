"""Files nyutai creates are 0600 and its folders 0700, even when started with umask 022.

Real ``nyutai`` processes, started the way an operator's shell starts them (umask 022, no
systemd ``UMask=``): each must set its own umask before creating anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from controller.journal import WorkJournal
from db.approvals import Actor, decide, request_approval
from db.engine import make_engine, make_session_factory
from db.eventlog import append_event
from db.models import Event, Operator
from db.reports.fonts import FontMissingError, find_cjk_font
from domain.config import load_config
from domain.vocabulary import ApprovalKind
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS

ROOT = Path(__file__).resolve().parents[1]
SHELL_UMASK = 0o022


def nyutai(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nyutai", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        umask=SHELL_UMASK,
    )
    assert result.returncode == 0, result.stderr
    return result


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def loose(root: Path, skip: set[Path]) -> list[str]:
    """Everything under ``root`` others could read: files not 0600, folders not 0700."""
    found = []
    for p in sorted(root.rglob("*")):
        if p in skip:
            continue
        want = 0o700 if p.is_dir() else 0o600
        if mode(p) != want:
            found.append(f"{p.relative_to(root)} {oct(mode(p))}")
    return found


def _seed(site: Path) -> None:
    """Operators and a few 2020 events, for the purge and the report (written by the test)."""
    cfg = load_config(site)
    engine = make_engine(cfg.database_url)
    with make_session_factory(engine)() as s:
        for name, role in (("administrator", "administrator"), ("manager", "manager"),
                           ("manager2", "manager"), ("guard", "guard")):  # fmt: skip
            s.add(Operator(username=name, display_name=name, role=role, password_hash="x"))
        t0 = datetime(2020, 3, 2, 1, 0, tzinfo=UTC)
        for i in range(4):
            append_event(
                s,
                Event(
                    occurred_at=t0 + timedelta(hours=i),
                    kind="presentation",
                    reader="sr-in",
                    decision="denied",
                    reason="unknown_card",
                ),
            )
        s.commit()
    engine.dispose()


def _approved(site: Path, kind: str, params: dict[str, str]) -> int:
    """What the console records when one manager asks and another approves."""
    engine = make_engine(load_config(site).database_url)
    try:
        with make_session_factory(engine).begin() as s:
            ops = {o.username: Actor.of(o) for o in s.scalars(select(Operator))}
            req = request_approval(s, kind, params, ops["manager"], "契約終了")
            decide(s, req.id, ops["manager2"], True)
            return req.id
    finally:
        engine.dispose()


def test_commands_create_private_files(tmp_path: Path) -> None:
    data = tmp_path / "site"
    data.mkdir(mode=0o755)
    site = data / "site.toml"
    shutil.copyfile(DEMO_SITE, site)
    config = str(site)

    nyutai("db", "upgrade", "--config", config)
    assert mode(data / "nyutai.db") == 0o600
    nyutai("keys", "generate", "--config", config)
    assert mode(data / "keys") == 0o700
    assert mode(data / "keys" / "checkpoint.key") == 0o600
    assert mode(data / "keys" / "checkpoint-trusted.pub") == 0o600

    _seed(site)
    try:  # the certificate and the PDF report need a Japanese font (fonts-ipaexfont-gothic)
        find_cjk_font()
        pdf = True
    except FontMissingError:
        pdf = False
    if pdf:
        # the two approvals a manager asks for and a second manager gives in the console
        retention = _approved(site, ApprovalKind.RETENTION,
                              {"contract_end": "2020-03-31", "channel": "cli"})  # fmt: skip
        nyutai("retention", "set", "--config", config, "--contract-end", "2020-03-31",
               "--approval", str(retention))  # fmt: skip
        purge = _approved(site, ApprovalKind.PURGE, {"log": "events", "before": "2020-03-03"})
        nyutai("purge", "--config", config, "--log", "events", "--before", "2020-03-03",
               "--approval", str(purge))  # fmt: skip
        (certificate,) = (data / "certificates").glob("deletion-*.pdf")
        assert mode(data / "certificates") == 0o700 and mode(certificate) == 0o600

    formats = ["--format", "csv", *(["--format", "pdf"] if pdf else [])]
    nyutai("report", "monthly", "--config", config, "--month", "2020-03", *formats)
    month = data / "reports" / "2020-03"
    assert {p.suffix for p in month.iterdir()} == ({".csv", ".pdf"} if pdf else {".csv"})
    assert mode(data / "reports") == 0o700 and mode(month) == 0o700

    out = nyutai("backup", "--config", config)
    (backup,) = (data / "backups").glob("nyutai-*.db")
    assert str(backup) in out.stdout
    assert mode(data / "backups") == 0o700 and mode(backup) == 0o600

    # and nothing else nyutai wrote is readable by others (the site file is the test's own)
    assert loose(data, {site}) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo stopped: {proc.communicate()[1]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"no answer from {url}")


def test_the_demo_creates_private_files(tmp_path: Path) -> None:
    """The demo (controller + web in one process): its data folder, the database with its
    WAL and SHM while running, the keys and the web's secret."""
    data = tmp_path / "demo"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nyutai", "demo", "--data-dir", str(data), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        umask=SHELL_UMASK,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/login", proc)
        site = data / "site.toml"
        tapped = nyutai("tap", "--config", str(site), "--reader", "sr-in",
                        "--card", DEMO_CARDS["yamada"][1])  # fmt: skip
        assert tapped.stdout.startswith("granted")
        names = {p.name for p in data.iterdir()}
        assert {"nyutai.db", "nyutai.db-wal", "nyutai.db-shm", "secret_key", "keys"} <= names
        assert mode(data) == 0o700
        assert loose(data, set()) == []
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "every strike is locked" in err or proc.returncode == 0, err


def test_the_unsaved_events_journal_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """The journal the controller writes while the database is down opens its file 0600
    itself, so it stays private even in a process that never set its umask."""
    previous = os.umask(SHELL_UMASK)
    try:
        journal = WorkJournal(tmp_path / "state" / "unsaved-events.jsonl")
        journal.append(
            [{"events": [{"occurred_at": datetime(2026, 4, 1, tzinfo=UTC), "raw_card_id": "01"}]}]
        )
    finally:
        os.umask(previous)
    assert mode(tmp_path / "state") == 0o700
    assert mode(journal.path) == 0o600
    assert journal.works()[0]["events"][0]["raw_card_id"] == "01"
