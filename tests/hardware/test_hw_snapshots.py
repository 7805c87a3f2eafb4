"""Snapshots stored into a migrated SQLite database and a data directory."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Snapshot
from db.snapshots import store_snapshot, verify_snapshot

JST = timezone(timedelta(hours=9))


def jpeg(level: int = 100) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), level, np.uint8))
    assert ok
    return data.tobytes()


def test_file_and_row(tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    data = jpeg()
    # 08:30 in Tokyo on 1 April is still 31 March in UTC: the folder follows UTC.
    taken = datetime(2026, 4, 1, 8, 30, tzinfo=JST)
    with session_factory() as session:
        row = store_snapshot(session, tmp_path, "front-cam", data, taken, width=64, height=48)
        assert row.id is not None  # flushed
        session.commit()
    digest = hashlib.sha256(data).hexdigest()
    assert row.path == f"snapshots/2026/03/31/{digest}.jpg"
    assert (tmp_path / row.path).read_bytes() == data
    with session_factory() as session:
        stored = session.scalars(select(Snapshot)).one()
        assert stored.sha256 == digest
        assert stored.camera == "front-cam"
        assert stored.taken_at == taken.astimezone(UTC)
        assert (stored.width, stored.height) == (64, 48)
        assert verify_snapshot(tmp_path, stored)


def test_a_changed_file_fails_verification(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        row = store_snapshot(session, tmp_path, "c", jpeg(), datetime.now(UTC))
        session.commit()
        (tmp_path / row.path).write_bytes(jpeg(200))
        assert not verify_snapshot(tmp_path, row)


def test_rolled_back_row_is_not_kept(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        store_snapshot(session, tmp_path, "c", jpeg(), datetime.now(UTC))
        session.rollback()  # the caller's commit decides
    with session_factory() as session:
        assert session.scalars(select(Snapshot)).all() == []


@pytest.mark.parametrize(
    ("data", "taken", "message"),
    [
        (jpeg(), datetime(2026, 4, 1, 8, 30), "aware"),
        (b"GIF89a....", datetime.now(UTC), "not a JPEG"),
    ],
)
def test_bad_input_writes_nothing(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    data: bytes,
    taken: datetime,
    message: str,
) -> None:
    with session_factory() as session:
        with pytest.raises(ValueError, match=message):
            store_snapshot(session, tmp_path, "c", data, taken)
        assert session.scalars(select(Snapshot)).all() == []
    assert not (tmp_path / "snapshots").exists()
