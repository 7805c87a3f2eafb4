"""Visitors' photos taken at the desk: stored like camera snapshots (a file named by its
SHA-256 under the data directory, a Snapshot row with the hash), but accepting only JPEG
and PNG images of bounded size, recognised by their bytes, not by what the browser says.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from db.models import Snapshot

CAMERA = "visitor-photo"  # Snapshot.camera of desk photos (tells them from door snapshots)
SUBDIR = "visitor-photos"
MAX_BYTES = 900 * 1024  # a 1280x960 JPEG is ~200 KB; the web's request limit is 1 MB
MIN_BYTES = 64
TYPES = {  # magic bytes -> (file suffix, MIME type)
    b"\xff\xd8\xff": (".jpg", "image/jpeg"),
    b"\x89PNG\r\n\x1a\n": (".png", "image/png"),
}


class PhotoError(ValueError):
    """Not a photo nyutai keeps; ``code``: empty, too_large, not_image."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def image_type(data: bytes) -> tuple[str, str] | None:
    """(suffix, MIME type) when ``data`` starts like a JPEG or PNG image."""
    for magic, kind in TYPES.items():
        if data.startswith(magic):
            return kind
    return None


def _size(data: bytes, suffix: str) -> tuple[int | None, int | None]:
    if suffix == ".png" and len(data) >= 24:  # IHDR follows the signature
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None, None


def store_photo(session: Session, data_dir: Path, data: bytes, taken_at: datetime) -> Snapshot:
    """Check, write (atomically, once per content) and add the row; the caller commits.
    Raises PhotoError, writing nothing, for anything that is not a JPEG/PNG within limits."""
    if len(data) < MIN_BYTES:
        raise PhotoError("empty", "no photo received")
    if len(data) > MAX_BYTES:
        raise PhotoError("too_large", f"the photo is larger than {MAX_BYTES // 1024} KB")
    kind = image_type(data)
    if kind is None:
        raise PhotoError("not_image", "only JPEG and PNG images are accepted")
    suffix, _mime = kind
    digest = hashlib.sha256(data).hexdigest()
    day = taken_at.astimezone(UTC)
    relpath = str(PurePosixPath(SUBDIR, f"{day:%Y}", f"{day:%m}", f"{digest}{suffix}"))
    target = data_dir / relpath
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    width, height = _size(data, suffix)
    row = Snapshot(
        taken_at=taken_at,
        camera=CAMERA,
        path=relpath,
        sha256=digest,
        width=width,
        height=height,
    )
    session.add(row)
    session.flush()
    return row


def photo_mime(path: str) -> str:
    return {".jpg": "image/jpeg", ".png": "image/png"}.get(Path(path).suffix.lower(), "")
