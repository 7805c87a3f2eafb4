"""Shared by the visitor-workflow tests: a real SMTP server on loopback (aiosmtpd), a JPEG,
pdftotext, and the visit form."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import Site

TOKYO = ZoneInfo("Asia/Tokyo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the loopback SMTP server received; ``refuse`` makes it answer 451 to DATA."""

    port: int
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 mailbox busy, try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.received if address in rcpt]


def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on a loopback port for as long as the generator runs."""
    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_port())
    ctl = Controller(box, hostname="127.0.0.1", port=box.port)
    ctl.start()
    try:
        yield box
    finally:
        ctl.stop()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    import cv2
    import numpy as np

    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, : width // 2] = (40, 120, 200)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


def pdf_text(data: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    path = tmp_path / "badge.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return out.stdout


def window(days: int = 0, hours: float = 3) -> tuple[str, str]:
    start = (datetime.now(TOKYO) + timedelta(days=days)).replace(second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M"), (start + timedelta(hours=hours)).strftime(
        "%Y-%m-%dT%H:%M"
    )


def visit_form(site: Site, days: int = 0, **over: str) -> dict[str, str]:
    start, end = window(days)
    data = {
        "name": "山田 太郎",
        "organization": "保守サービス株式会社",
        "id_checked": "1",
        "id_kind": "drivers_license",
        "purpose": "サーバ保守",
        "area_id": str(site.server_room),
        "escort_id": str(site.tanaka),
        "host_id": str(site.sato),
        "expected_from": start,
        "expected_until": end,
    }
    data.update(over)
    return data
