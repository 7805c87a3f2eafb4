"""The controller's memory kept in a local file between runs: start-up in seconds at millions.

Reading every cardholder from the database takes a minute at 2,000,000 (controller.memory).
The controller keeps its own copy of the arrays in its data folder (``memory-cache.bin``:
a JSON header and the arrays' bytes, mode 0600: it holds the PIN hashes the database holds too)
with the change-feed version they reflect. At start it loads the file and applies the
changes past that version (controller.feed), so a change made while it was down counts at
the first presentation.

The file is used only when everything about it checks out; otherwise it is logged with a
reason code and the controller reads the database in full (and writes a new file):

- ``memory_cache_corrupt``: unreadable, wrong format version, a checksum or shape mismatch;
- ``memory_cache_foreign``: written for another database (``database_id`` differs: each
  database gets a random identity in site_settings the first time a controller starts on it);
- ``memory_cache_too_old``: the changes past its version were pruned (db.changes.prune);
- ``memory_cache_ahead``: its version is past the database's (a restored backup).

It is written by its own thread (``CacheWriter``), never the door thread: right after a full
load, then every ``CACHE_SECONDS`` when the memory moved. The base and the overlay of
changes are merged into new arrays (``compact``); the live memory is left as it is. The
write goes to a temporary file, is fsynced and renamed over the old one: a crash leaves the
old file or the new one, whole.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.memory import (
    KINDS,
    STATES,
    Base,
    Snapshot,
    _ordinals,
    _us,
    card_keys,
    key_order,
)
from db.models import Change, SiteSetting
from db.types import utcnow
from domain.config import DEFAULT_CONTROLLER_ID

log = logging.getLogger(__name__)

FORMAT = 1
FILENAME = "memory-cache.bin"


def filename(controller_id: str) -> str:
    """The controller's own cache file: several controllers may share one data folder."""
    return (
        FILENAME if controller_id == DEFAULT_CONTROLLER_ID else f"memory-cache-{controller_id}.bin"
    )


IDENTITY_KEY = "database_id"
CACHE_SECONDS = 3600.0
ARRAYS = tuple(f.name for f in fields(Base) if f.type in ("np.ndarray", np.ndarray))
CRED_ARRAYS = tuple(a for a in ARRAYS if a.startswith("cred_") or a == "card_key")
PERSON_ARRAYS = ("person_kind", "person_active", "person_designated", "training")
AUTH_ARRAYS = tuple(a for a in ARRAYS if a.startswith("auth_"))


class CacheRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


# --- the database's identity ----------------------------------------------------------------


def ensure_identity(session: Session) -> str:
    """This database's random identity (created on first use, in the caller's transaction)."""
    row = session.get(SiteSetting, IDENTITY_KEY)
    if row is None:
        row = SiteSetting(key=IDENTITY_KEY, value=uuid.uuid4().hex, updated_at=utcnow())
        session.add(row)
        session.flush()
    return str(row.value)


def feed_range(session: Session) -> tuple[int | None, int]:
    """The oldest change still kept (None: none) and the newest version."""
    lo, hi = session.execute(select(func.min(Change.version), func.max(Change.version))).one()
    return (int(lo) if lo is not None else None), int(hi or 0)


# --- the file ---------------------------------------------------------------------------------


MAGIC = b"NYUTAIMC"
ALIGN = 64


def _crc(buf: Any) -> int:
    return zlib.crc32(buf)


def _bytes(arr: np.ndarray) -> memoryview:
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data


def save(path: Path, base: Base, version: int, identity: str) -> int:
    """Write ``base`` atomically; returns the file's size.

    Layout: ``MAGIC``, the header's length (8 bytes, little-endian), the header (JSON: format,
    version, identity, the small tables, and per array its dtype, shape, offset, length and
    CRC-32), then the arrays' bytes, each at a 64-byte boundary. Reading it is one read and
    views into it (numpy's zip archive took 11 s for 1 GiB here; this takes one read)."""
    arrays = {name: np.ascontiguousarray(getattr(base, name)) for name in ARRAYS}
    specs: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, arr in arrays.items():
        specs[name] = {
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
            "offset": offset,
            "nbytes": arr.nbytes,
            "crc": _crc(_bytes(arr)),
        }
        offset += -(-arr.nbytes // ALIGN) * ALIGN
    header = json.dumps(
        {
            "format": FORMAT,
            "version": version,
            "identity": identity,
            "techs": base.techs,
            "schedules": base.schedules,
            "purposes": base.purposes,
            "pin_hash": {str(k): v for k, v in base.pin_hash.items()},
            "arrays": specs,
        }
    ).encode()
    head = MAGIC + len(header).to_bytes(8, "little") + header
    head += b"\0" * (-len(head) % ALIGN)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for arr in arrays.values():
                f.write(_bytes(arr))
                f.write(b"\0" * (-arr.nbytes % ALIGN))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself made durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path.stat().st_size


def read(path: Path) -> tuple[Base, int, str]:
    """The base, its version and its database identity; CacheRejected when unusable."""
    try:
        data = path.read_bytes()
        if data[: len(MAGIC)] != MAGIC:
            raise CacheRejected("memory_cache_corrupt", "not a memory cache file")
        size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
        start = len(MAGIC) + 8
        meta = json.loads(data[start : start + size])
        if meta.get("format") != FORMAT:
            raise CacheRejected(
                "memory_cache_corrupt", f"format {meta.get('format')}, expected {FORMAT}"
            )
        body = start + size + (-(start + size) % ALIGN)
        view = memoryview(data)
        arrays: dict[str, np.ndarray] = {}
        for name in ARRAYS:
            spec = meta["arrays"][name]
            lo = body + int(spec["offset"])
            chunk = view[lo : lo + int(spec["nbytes"])]
            if len(chunk) != int(spec["nbytes"]):
                raise CacheRejected("memory_cache_corrupt", f"{name} cut short")
            if _crc(chunk) != spec["crc"]:
                raise CacheRejected("memory_cache_corrupt", f"checksum of {name} differs")
            arrays[name] = np.frombuffer(chunk, np.dtype(spec["dtype"])).reshape(spec["shape"])
    except CacheRejected:
        raise
    except Exception as exc:  # a torn or foreign file: JSON, key, dtype or shape errors
        raise CacheRejected("memory_cache_corrupt", f"{exc.__class__.__name__}: {exc}") from exc
    for group in (CRED_ARRAYS, PERSON_ARRAYS, AUTH_ARRAYS):
        if len({len(arrays[a]) for a in group}) != 1:
            raise CacheRejected("memory_cache_corrupt", f"lengths differ in {group}")
    base = Base(
        **arrays,
        pin_hash={int(k): v for k, v in meta["pin_hash"].items()},
        techs=list(meta["techs"]),
        schedules=list(meta["schedules"]),
        purposes=list(meta["purposes"]),
    )
    return base, int(meta["version"]), str(meta["identity"])


def load(path: Path, identity: str, kept: tuple[int | None, int]) -> tuple[Base, int] | None:
    """The cached base if it is usable for this database now; None (logged) otherwise."""
    if not path.exists():
        log.info("no memory cache at %s: reading every cardholder", path)
        return None
    started = time.monotonic()
    try:
        base, version, ident = read(path)
        oldest, newest = kept
        if ident != identity:
            raise CacheRejected("memory_cache_foreign", "written for another database")
        if version > newest:
            raise CacheRejected(
                "memory_cache_ahead", f"at version {version}, the database at {newest}"
            )
        if oldest is not None and version < oldest - 1:
            raise CacheRejected(
                "memory_cache_too_old",
                f"at version {version}, changes before {oldest} were pruned",
            )
    except CacheRejected as exc:
        log.warning(
            "memory cache %s not used (%s: %s): reading every cardholder", path, exc.code, exc
        )
        return None
    log.info(
        "memory cache at version %d read in %.2f s (%d credentials)",
        version,
        time.monotonic() - started,
        len(base.cred_id),
    )
    return base, version


# --- merging the overlay into new arrays --------------------------------------------------------


def _code(table: list[Any], value: Any) -> int:
    if value is None:
        return -1
    if value not in table:
        table.append(value)
    return table.index(value)


def compact(snap: Snapshot) -> Base:
    """``snap``'s base with its overlay merged in (the snapshot itself is left unchanged)."""
    b, ov = snap.base, snap.overlay
    if not (ov.creds or ov.people or ov.trainings or ov.auths):
        return b
    techs, schedules, purposes = list(b.techs), list(b.schedules), list(b.purposes)

    # credentials: drop the changed ones, append their current facts, sort again
    keep = ~np.isin(b.cred_id, np.fromiter(ov.creds, np.int64, len(ov.creds)))
    fresh = [(f, owner) for f, owner in (v for v in ov.creds.values() if v is not None)]
    pins = {k: v for k, v in b.pin_hash.items() if k not in ov.creds}
    for f, _ in fresh:
        if f.pin_hash:
            pins[f.id] = f.pin_hash
    state_code = {s: i for i, s in enumerate(STATES)}
    added = {
        "card_key": card_keys([f.card_id for f, _ in fresh]),
        "cred_id": np.array([f.id for f, _ in fresh], np.int64),
        "cred_tech": np.array([_code(techs, f.technology) for f, _ in fresh], np.uint8),
        "cred_state": np.array([state_code.get(str(f.state), 1) for f, _ in fresh], np.uint8),
        "cred_from": np.array([_us(f.valid_from) for f, _ in fresh], np.int64),
        "cred_until": np.array([_us(f.valid_until) for f, _ in fresh], np.int64),
        "cred_person": np.array([owner or 0 for _, owner in fresh], np.int64),
        "cred_failed": np.array([f.failed_pin_count for f, _ in fresh], np.int32),
        "cred_temp": np.array([f.temporary for f, _ in fresh], np.bool_),
    }
    creds = {a: np.concatenate([getattr(b, a)[keep], added[a]]) for a in CRED_ARRAYS}
    order = key_order(creds["card_key"])
    creds = {a: v[order] for a, v in creds.items()}

    # people and trainings: indexed by person id, grown when a new person is past the end
    top = max([len(b.person_kind) - 1, *ov.people, *ov.trainings])
    people = {}
    for a in PERSON_ARRAYS:
        arr = getattr(b, a)
        grown = np.zeros(top + 1, arr.dtype)
        grown[: len(arr)] = arr
        people[a] = grown
    kind_code = {k: i for i, k in enumerate(KINDS) if k}
    for pid, rec in ov.people.items():
        if rec is None:
            people["person_kind"][pid] = 0
            people["person_active"][pid] = False
            people["person_designated"][pid] = False
        else:
            people["person_kind"][pid] = kind_code.get(rec.kind, 1)
            people["person_active"][pid] = rec.active
            people["person_designated"][pid] = rec.designated
    if ov.trainings:
        pids = list(ov.trainings)
        days = [ov.trainings[p] for p in pids]
        people["training"][np.array(pids, np.int64)] = _ordinals(
            [d if isinstance(d, date | str | type(None)) else str(d) for d in days]
        )

    # authorizations: the changed people's rows replaced, sorted by person again
    akeep = ~np.isin(b.auth_person, np.fromiter(ov.auths, np.int64, len(ov.auths)))
    rows = [(pid, area, a) for pid, lst in ov.auths.items() for area, a in lst]
    aadded = {
        "auth_person": np.array([r[0] for r in rows], np.int64),
        "auth_area": np.array([r[1] for r in rows], np.int32),
        "auth_id": np.array([r[2].id for r in rows], np.int64),
        "auth_from": np.array([_us(r[2].valid_from) for r in rows], np.int64),
        "auth_until": np.array([_us(r[2].valid_until) for r in rows], np.int64),
        "auth_schedule": np.array(
            [_code(schedules, r[2].schedule or None) for r in rows], np.int32
        ),
        "auth_purpose": np.array([_code(purposes, r[2].default_purpose) for r in rows], np.int32),
    }
    auths = {a: np.concatenate([getattr(b, a)[akeep], aadded[a]]) for a in AUTH_ARRAYS}
    aorder = np.argsort(auths["auth_person"], kind="stable")
    auths = {a: v[aorder] for a, v in auths.items()}
    return Base(
        **creds,
        **people,
        **auths,
        pin_hash=pins,
        techs=techs,
        schedules=schedules,
        purposes=purposes,
    )


# --- the writer thread ------------------------------------------------------------------------


class CacheWriter:
    """Writes the memory to ``path`` now (after a full load) and every ``interval`` seconds
    when it moved. Its own thread: the door thread never waits for it."""

    def __init__(
        self,
        get: Callable[[], Snapshot],
        path: Path,
        identity: str,
        *,
        interval: float = CACHE_SECONDS,
        written: int | None = None,
    ) -> None:
        self.get = get
        self.path = path
        self.identity = identity
        self.interval = interval
        self.written = written  # the version in the file (None: no usable file)
        self.saved = threading.Event()  # set after each write (tests, tools)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memory-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        wait = 0.0 if self.written is None else self.interval
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.write_now()
            except Exception:
                log.exception("memory cache not written (memory_cache_write_failed)")

    def write_now(self) -> bool:
        snap = self.get()
        if snap.version == self.written:
            return False
        started = time.monotonic()
        size = save(self.path, compact(snap), snap.version, self.identity)
        self.written = snap.version
        log.info(
            "memory cache written at version %d: %.0f MiB in %.1f s",
            snap.version,
            size / 2**20,
            time.monotonic() - started,
        )
        self.saved.set()
        return True
