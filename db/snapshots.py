"""Store a camera snapshot as evidence: a file named by its SHA-256, and a Snapshot row.

Files go under ``<data_dir>/snapshots/YYYY/MM/DD/<sha256>.jpg`` (the UTC date, like
every stored time); the row keeps the path relative to the data directory, so the
directory can move, and the hash, so a changed or swapped file can be detected.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from db.models import Snapshot

JPEG_START = b"\xff\xd8\xff"


def snapshot_relpath(sha256: str, taken_at: datetime, subdir: str = "snapshots") -> str:
    day = taken_at.astimezone(UTC)
    return str(PurePosixPath(subdir, f"{day:%Y}", f"{day:%m}", f"{day:%d}", f"{sha256}.jpg"))


def store_snapshot(
    session: Session,
    data_dir: Path,
    camera_id: str,
    jpeg: bytes,
    taken_at: datetime,
    *,
    width: int | None = None,
    height: int | None = None,
    subdir: str = "snapshots",
) -> Snapshot:
    """Write the file, add the row and flush; the caller commits (with its event row).

    Raises ValueError, writing nothing, for a naive ``taken_at`` or data that is not a JPEG.
    """
    if taken_at.tzinfo is None:
        raise ValueError("taken_at must be an aware datetime (nyutai stores UTC)")
    if not jpeg.startswith(JPEG_START):
        raise ValueError(f"snapshot from camera {camera_id!r} is not a JPEG image")
    if Path(subdir).is_absolute() or ".." in Path(subdir).parts:
        raise ValueError("the snapshot directory must be inside the data directory")
    digest = hashlib.sha256(jpeg).hexdigest()
    relpath = snapshot_relpath(digest, taken_at, subdir)
    target = data_dir / relpath
    if not target.exists():  # same bytes = same name: an identical frame is stored once
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_bytes(jpeg)
        os.replace(partial, target)  # never a half-written file under the final name
    row = Snapshot(
        taken_at=taken_at,
        camera=camera_id,
        path=relpath,
        sha256=digest,
        width=width,
        height=height,
    )
    session.add(row)
    session.flush()
    return row


def verify_snapshot(data_dir: Path, row: Snapshot) -> bool:
    """True when the file is there and still has the hash recorded in its row."""
    try:
        data = (data_dir / row.path).read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == row.sha256
