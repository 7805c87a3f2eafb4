"""Signed checkpoints: an Ed25519 signature over a chain's head (log, seq, hash, time).

A checkpoint lets an auditor detect what a bare hash chain cannot: rows cut from the end of
the log, or the whole chain rewritten by someone who recomputed every hash. The private key
is a file in the data directory (mode 0600), never in the database or a log; every public key
ever generated is appended to a ``*-trusted.pub`` file beside it, so checkpoints signed before
a key change still verify. Verification trusts only those keys (never the key stored on the
checkpoint row, which an attacker could replace along with the signature).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.chain import chain_log, checkpoint_message, log_controller, log_model
from db.eventlog import chain_head
from db.models import Checkpoint
from db.types import utcnow

log = logging.getLogger(__name__)

DEFAULT_KEY_FILE = "keys/checkpoint.key"


class SigningKeyError(RuntimeError):
    """The signing key file is missing, unreadable or not an Ed25519 key."""


def trusted_file(key_path: Path) -> Path:
    return key_path.with_name(key_path.stem + "-trusted.pub")


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def generate_key(key_path: Path, *, force: bool = False) -> str:
    """Create a new signing key file (0600) and trust its public key; returns the public hex."""
    if key_path.exists() and not force:
        raise SigningKeyError(
            f"{key_path} exists; refusing to replace the signing key (use --force)"
        )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = key_path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, key_path)
    pub = public_hex(key)
    with trusted_file(key_path).open("a", encoding="ascii") as f:
        f.write(pub + "\n")
    return pub


def load_key(key_path: Path) -> Ed25519PrivateKey:
    try:
        data = key_path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no signing key at {key_path}: create one with `nyutai keys generate`"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise SigningKeyError(f"{key_path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{key_path} is not an Ed25519 key")
    return key


def trusted_keys(key_path: Path) -> set[str]:
    """Public keys (hex) checkpoints and tombstones may be signed with."""
    keys: set[str] = set()
    tf = trusted_file(key_path)
    if tf.exists():
        keys |= {ln.strip() for ln in tf.read_text(encoding="ascii").splitlines() if ln.strip()}
    if key_path.exists():
        keys.add(public_hex(load_key(key_path)))
    return keys


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def signature_ok(public_key_hex: str, signature: bytes, message: bytes) -> bool:
    try:
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        pub.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_valid(cp: Checkpoint, trusted: set[str]) -> bool:
    """True if a trusted key signed exactly this checkpoint's (log, seq, hash, time)."""
    msg = checkpoint_message(cp.log, cp.seq, cp.hash, cp.created_at)
    return any(signature_ok(k, cp.signature, msg) for k in trusted)


def create_checkpoints(
    session: Session,
    key: Ed25519PrivateKey,
    *,
    zone: ZoneInfo,
    now: datetime | None = None,
    daily: bool = True,
) -> list[Checkpoint]:
    """Sign the head of each non-empty log (flushes; the caller commits).

    With ``daily`` a log that already has a checkpoint on the same day (the site's calendar,
    ``zone``) is skipped,
    so a job run twice (after a restart) adds nothing.
    """
    now = now or utcnow()
    made = []
    from db.controllers import event_chains

    logs = [chain_log(c) for c in event_chains(session)] + ["audit"]
    for log_name in logs:  # one checkpoint per chain: each controller's, and the audit log's
        model = log_model(log_name)
        seq, head = chain_head(session, model, log_controller(log_name))
        if seq == 0:
            continue
        if daily:
            last = session.scalars(
                select(Checkpoint)
                .where(Checkpoint.log == log_name)
                .order_by(Checkpoint.created_at.desc())
                .limit(1)
            ).first()
            if last and last.created_at.astimezone(zone).date() == now.astimezone(zone).date():
                continue
        cp = Checkpoint(
            log=log_name,
            seq=seq,
            hash=head,
            created_at=now,
            signature=sign(key, checkpoint_message(log_name, seq, head, now)),
            public_key=public_hex(key),
        )
        session.add(cp)
        made.append(cp)
        log.info("checkpoint %s seq=%d hash=%s", log_name, seq, head)
    session.flush()
    return made
