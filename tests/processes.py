"""Real ``nyutai`` processes for tests, and a cookie-keeping HTTP client for the console.

Shared by the tests that run the console as its own process (``nyutai web``) beside the
database and the controllers: tests/test_failover.py, tests/test_web_processes.py and
tests/controller/test_multi_controller.py.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp

from tests.pgpair import free_port

ROOT = Path(__file__).resolve().parents[1]
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m nyutai ARGS`` from the repository root, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nyutai", *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each still running, then SIGKILL to any that has not exited in 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Browser:
    """A cookie-keeping HTTP client for the console (no redirects followed)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.location: str | None = None  # the Location header of the last answer

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a: object, **k: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def token(self, page: str) -> str:
        """The CSRF token of the form on ``page``, as a browser would send it."""
        _, html = self.get(page)
        m = CSRF_RE.search(html)
        assert m, f"no CSRF token on {page}: {html[:500]}"
        return m.group(1)

    def submit(self, path: str, data: dict[str, str], page: str = "/dashboard") -> int:
        """POST a form with the CSRF token read from ``page`` (one the operator can open)."""
        status, _ = self.post(path, {**data, "csrf_token": self.token(page)})
        return status

    def _open(self, req: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(req, timeout=30) as resp:
                self.location = resp.headers.get("Location")
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            self.location = exc.headers.get("Location")
            return exc.code, exc.read().decode("utf-8", "replace")

    def sign_in(self, username: str, password: str, totp_seed: str | None = None) -> int:
        """Sign in with the login form; with ``totp_seed`` also answer the code page (the
        second step managers and administrators must pass) with the seed's current code."""
        status = self.submit("/login", {"username": username, "password": password}, "/login")
        step = self.location or ""
        if status != 302 or totp_seed is None or not step.startswith("/login/mfa"):
            return status
        # the console accepts one time step either side of its clock, so a step boundary
        # passing between here and the POST does no harm
        return self.submit(step, {"code": pyotp.TOTP(totp_seed).now()}, step)


def wait_for(
    what: str, fn: Callable[[], bool], timeout: float, *procs: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        for p in procs:
            assert p.poll() is None, f"a process exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def web_up(browser: Browser) -> bool:
    try:
        return browser.get("/health")[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def web_console(site: Path, log: Path, port: int | None = None) -> Iterator[str]:
    """A ``nyutai web`` process on loopback for ``site``: yields its base URL once it answers
    /health, and stops it on leaving, whatever happened inside."""
    port = port or free_port()
    proc = start(["web", "--config", str(site), "--host", "127.0.0.1", "--port", str(port)], log)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for("the console", lambda: web_up(Browser(base)), 60, proc)
        except AssertionError as exc:
            output = log.read_text(encoding="utf-8", errors="replace")
            raise AssertionError(f"{exc}\n{output}") from exc
        yield base
    finally:
        stop(proc)
