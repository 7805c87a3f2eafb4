"""``nyutai web --processes 2``: two console processes on one listening socket, supervised.

A real parent process listens once and runs two children on its socket. Checked: both
children run and serve a signed-in guard (sessions live in the database, so it does not
matter which child answers); a child killed with SIGKILL is replaced and the console keeps
answering; SIGTERM to the parent stops every child. A bad ``processes`` value is a clear
error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Operator
from nyutai import DEMO_SITE
from tests.pgpair import free_port
from tests.processes import ROOT, Browser, start, stop, wait_for, web_up
from web.accounts import hash_password
from web.serve import START_GRACE_SECONDS

PASSWORD = "prefork-console-" + "pw" * 8


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")"
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _site(tmp_path: Path, processes: int | str, web_extra: str = "") -> Path:
    url = f"sqlite:///{tmp_path / 'nyutai.db'}"
    text = Path(DEMO_SITE).read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///nyutai.db"', f'url = "{url}"', 1)
    text = text.replace("[web]\n", f"[web]\nprocesses = {processes}\n{web_extra}", 1)
    site = tmp_path / "site.toml"
    site.write_text(text, encoding="utf-8")
    return site


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_processes_share_the_port_and_are_supervised(tmp_path: Path) -> None:
    site = _site(tmp_path, 2)
    url = f"sqlite:///{tmp_path / 'nyutai.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        s.add(
            Operator(
                username="guard", display_name="guard", role="guard",
                password_hash=hash_password(PASSWORD),
            )
        )  # fmt: skip
    engine.dispose()
    port = free_port()
    parent = start(["web", "--config", str(site), "--port", str(port)], tmp_path / "web.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the console", lambda: web_up(Browser(base)), 60, parent)
        wait_for("two console processes", lambda: len(_children(parent.pid)) == 2, 30, parent)
        first = _children(parent.pid)
        seen_at = time.monotonic()  # both children were started before this
        guard = Browser(base)
        assert guard.sign_in("guard", PASSWORD) == 302
        for _ in range(10):  # a new connection each: the kernel spreads them over both
            status, html = guard.get("/dashboard")
            assert status == 200 and "guard" in html

        # past the start-up grace: a process dying later is restarted, not taken as a
        # console that cannot start
        time.sleep(max(0.0, seen_at + START_GRACE_SECONDS + 1 - time.monotonic()))
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        log_file = tmp_path / "web.log"
        try:
            wait_for(
                "the supervisor to see the exit",
                lambda: "exited (-9): starting another" in log_file.read_text(),
                30,
                parent,
            )
            wait_for(
                "a replacement process",
                lambda: len(_children(parent.pid)) == 2 and victim not in _children(parent.pid),
                30,
                parent,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; children {_children(parent.pid)}, first {first}, "
                                 f"log:\n{log_file.read_text()}") from None  # fmt: skip
        wait_for("the console again", lambda: web_up(Browser(base)), 30, parent)
        for _ in range(10):
            assert guard.get("/dashboard")[0] == 200  # same session, whichever answers
        survivors = _children(parent.pid)
    finally:
        stop(parent)
    assert parent.returncode == 0, (tmp_path / "web.log").read_text()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in survivors):
        assert time.monotonic() < deadline, "a console process outlived its parent"
        time.sleep(0.1)


def test_a_bad_process_count_is_refused(tmp_path: Path) -> None:
    site = _site(tmp_path, 0)
    done = subprocess.run(
        [sys.executable, "-m", "nyutai", "web", "--config", str(site)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "web.processes" in done.stderr and "from 1 to" in done.stderr


def test_a_console_that_cannot_start_stops_the_parent(tmp_path: Path) -> None:
    """A child that exits at start (here: its signing key cannot be created) is not
    restarted every second: the parent stops with an error naming the cause."""
    site = _site(tmp_path, 2, 'secret_key_file = "/proc/nyutai-no-such-dir/secret_key"\n')
    upgrade(f"sqlite:///{tmp_path / 'nyutai.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "nyutai", "web", "--config", str(site), "--port", str(free_port())],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "console_failed" in done.stderr
    assert "nyutai-no-such-dir" in done.stderr  # the child's own error is shown too
