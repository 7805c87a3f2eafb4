"""The production entry point: web.serve.serve(cfg) runs waitress on the site's port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_on_the_configured_port(tmp_path: Path, db_url: str) -> None:
    port = _free_port()
    site = tmp_path / "site.toml"
    site.write_text(
        f'[database]\nurl = "{db_url}"\n[web]\nhost = "127.0.0.1"\nport = {port}\n',
        encoding="utf-8",
    )
    code = (
        "from domain.config import load_config; from web.serve import serve; "
        f"serve(load_config({str(site)!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    body = r.read().decode()
                    headers = r.headers
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"server did not start: {out[-2000:]}")
                time.sleep(0.2)
        assert "ログイン" in body
        assert headers["Server"] == "nyutai"  # waitress, with its ident
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=10)
