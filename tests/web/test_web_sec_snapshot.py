"""Issue 12, defect 7: the snapshot route serves camera images only.

A snapshot row whose path was ``keys/checkpoint.key`` returned the Ed25519 private key: the
old check only kept the file inside the data directory. Now the file must lie inside the
snapshot folder (``[controller] snapshot_dir``) and have an image suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.models import Snapshot
from db.types import utcnow
from tests.web.conftest import Auth
from tests.web.test_web_incidents import PNG, incident  # noqa: F401 - the fixture


def _row(factory: sessionmaker[Session], path: str) -> int:
    with factory() as s:
        snap = Snapshot(taken_at=utcnow(), camera="x", path=path, sha256="0" * 64)
        s.add(snap)
        s.commit()
        return snap.id


@pytest.mark.parametrize(
    "stored",
    [
        "keys/checkpoint.key",
        "secret_key",
        "nyutai.db",
        "snapshots/notes.txt",
        "snapshots/../keys/checkpoint.png",
        "reports/2026-01/monthly-2026-01.csv",
    ],
)
def test_only_images_in_the_snapshot_folder_are_served(
    auth: Auth,
    incident: dict[str, Any],  # noqa: F811
    data_dir: Path,
    session_factory: sessionmaker[Session],
    stored: str,
) -> None:
    for rel, body in {
        "keys/checkpoint.key": b"PRIVATE KEY MATERIAL",
        "keys/checkpoint.png": b"PRIVATE KEY MATERIAL",
        "secret_key": b"PRIVATE KEY MATERIAL",
        "nyutai.db": b"PRIVATE KEY MATERIAL",
        "snapshots/notes.txt": b"PRIVATE KEY MATERIAL",
        "reports/2026-01/monthly-2026-01.csv": b"PRIVATE KEY MATERIAL",
    }.items():
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / rel).write_bytes(body)
    snap_id = _row(session_factory, stored)
    auth.login("guard")
    resp = auth.client.get(f"/incidents/snapshots/{snap_id}")
    assert resp.status_code == 404 and b"PRIVATE KEY" not in resp.data


def test_a_real_snapshot_in_a_dated_folder_is_served(
    auth: Auth,
    incident: dict[str, Any],  # noqa: F811
    data_dir: Path,
    session_factory: sessionmaker[Session],
) -> None:
    rel = "snapshots/2026/04/01/" + "ab" * 32 + ".jpg"
    (data_dir / rel).parent.mkdir(parents=True)
    (data_dir / rel).write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    snap_id = _row(session_factory, rel)
    auth.login("guard")
    resp = auth.client.get(f"/incidents/snapshots/{snap_id}")
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    png = auth.client.get(f"/incidents/snapshots/{incident['snapshot']}")
    assert png.status_code == 200 and png.data == PNG
