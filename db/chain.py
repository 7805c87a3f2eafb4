"""The canonical serialization hashed into the tamper-evident chains.

canonical(row) = JSON of the listed fields, keys sorted, no spaces, UTF-8, times as
ISO 8601 UTC with microseconds. ``hash = sha256(prev_hash_hex + canonical).hexdigest()``.
The field lists are part of the evidence format: changing them needs a new format version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from db.models import AuditLog, Event

GENESIS = "0" * 64
FORMAT_VERSION = 1

EVENT_FIELDS = (
    "seq",
    "occurred_at",
    "kind",
    "door_id",
    "area_id",
    "reader",
    "direction",
    "person_id",
    "credential_id",
    "technology",
    "raw_card_id",
    "decision",
    "reason",
    "purpose",
    "visitor",
    "visit_id",
    "escort_person_id",
    "escort_event_id",
    "snapshot_sha256",
    "detail",
)
AUDIT_FIELDS = (
    "seq",
    "occurred_at",
    "operator_id",
    "username",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "remote_addr",
)


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v


def canonical(row: Any, fields: tuple[str, ...]) -> bytes:
    data = {f: _value(getattr(row, f)) for f in fields}
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def canonical_event(row: Event) -> bytes:
    return canonical(row, EVENT_FIELDS)


def canonical_audit(row: AuditLog) -> bytes:
    return canonical(row, AUDIT_FIELDS)


def chain_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()
