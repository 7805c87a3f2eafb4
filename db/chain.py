"""The canonical serialization hashed into the tamper-evident chains (format version 1).

``canonical(row)`` is the JSON object of the fields listed below (``EVENT_FIELDS`` /
``AUDIT_FIELDS``), keys sorted, separators ``,`` and ``:``, no ASCII escaping, UTF-8.
Values are normalized by column type so that what is hashed at append time equals what
the database gives back at verification time: strings as strings, integers as integers,
booleans as ``true``/``false``, times as ISO 8601 UTC with microseconds
(``2026-01-31T23:59:59.000123Z``), JSON columns as JSON, missing values as ``null``.

``hash = sha256(prev_hash_hex_ascii || canonical).hexdigest()``; the first row's
``prev_hash`` is ``GENESIS`` (64 zeros). ``seq`` is inside the canonical form, so moving a
row to another position changes its hash. Changing the field lists needs a new format
version (docs/evidence.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String

from db.models import AuditLog, Base, DeletionRecord, Event
from db.types import UTCDateTime
from domain.config import DEFAULT_CONTROLLER_ID

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
# The fields of a deletion record that its Ed25519 signature covers (the tombstone).
DELETION_FIELDS = (
    "log",
    "from_seq",
    "to_seq",
    "from_time",
    "to_time",
    "row_count",
    "first_hash",
    "last_hash",
    "requested_by",
    "approved_by",
    "approved_at",
)

LOG_MODELS: dict[str, type[Event] | type[AuditLog]] = {"events": Event, "audit": AuditLog}
LOG_FIELDS: dict[str, tuple[str, ...]] = {"events": EVENT_FIELDS, "audit": AUDIT_FIELDS}

# Several controllers on one database: each controller's events are a chain of their own,
# named "events" for the default controller (the name a site with one controller always
# had) and "events@ID" for another. ``controller`` is not inside the canonical form (format
# version 1 stays): a row moved to another chain breaks both chains' links instead.


def chain_log(controller: str) -> str:
    """The log name of a controller's events chain (checkpoints, deletion records)."""
    return "events" if controller == DEFAULT_CONTROLLER_ID else f"events@{controller}"


def log_controller(log: str) -> str | None:
    """The controller of an events chain's log name; None for the audit log."""
    if log == "events":
        return DEFAULT_CONTROLLER_ID
    if log.startswith("events@") and len(log) > len("events@"):
        return log[len("events@") :]
    if log in LOG_MODELS:
        return None
    raise ValueError(f"unknown log {log!r}")


def log_model(log: str) -> type[Event] | type[AuditLog]:
    """The table of a log name (ValueError for an unknown name)."""
    return AuditLog if log_controller(log) is None else Event


def log_fields(log: str) -> tuple[str, ...]:
    return AUDIT_FIELDS if log_controller(log) is None else EVENT_FIELDS


def chain_where(log: str) -> tuple[Any, ...]:
    """Conditions selecting one chain's rows of its table (none for the audit log)."""
    c = log_controller(log)
    return () if c is None else (Event.controller == c,)


def format_time(v: datetime) -> str:
    if v.tzinfo is None:  # the UTCDateTime column refuses naive times; be strict here too
        raise ValueError("naive datetime in a chained row")
    return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_round_trip(v: Any) -> Any:
    # what the database returns: a JSON round trip (int keys become strings, tuples lists)
    return json.loads(json.dumps(v, ensure_ascii=False))


def _normalizer(col_type: Any) -> Any:
    """The value normalization for one column type (looked up once per field, not per row)."""
    if isinstance(col_type, UTCDateTime):
        return format_time
    if isinstance(col_type, Boolean):
        return bool
    if isinstance(col_type, Integer):  # BigInteger is an Integer
        return int
    if isinstance(col_type, String):
        return str  # StrEnum members and ints given for string columns
    if isinstance(col_type, JSON):
        return _json_round_trip
    return None


_NORMALIZERS: dict[tuple[type[Base], tuple[str, ...]], tuple[Any, ...]] = {}


def normalizers(model: type[Base], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """One normalizer per field of ``fields`` (None: the value as it is), cached per model."""
    key = (model, fields)
    if key not in _NORMALIZERS:
        _NORMALIZERS[key] = tuple(_normalizer(model.__table__.c[f].type) for f in fields)
    return _NORMALIZERS[key]


def canonical_values(
    fields: tuple[str, ...], norms: tuple[Any, ...], values: tuple[Any, ...] | list[Any]
) -> bytes:
    """The canonical form of one row given as plain values in ``fields`` order (the fast path
    of verification: Core tuples, no per-row reflection). Equal to ``canonical``."""
    data = {
        f: (None if v is None else (n(v) if n is not None else v))
        for f, n, v in zip(fields, norms, values, strict=True)
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# The same encoder json.dumps builds for these arguments, made once.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Its C core, called directly: JSONEncoder.encode builds a new one on every call. Arguments:
# markers (None: no cycle check, rows hold no cycles), default, string encoder, indent,
# key separator, item separator, sort_keys, skipkeys, allow_nan -- what _ENCODER passes.
_C_ENCODE: Any = (
    c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, True)
    if c_make_encoder is not None
    else None
)


def _sqlite_time(v: Any) -> str:
    """A time as SQLite stores it (``2026-01-31 23:59:59.000123``, naive UTC) to the canonical
    form by slicing; any other shape goes through datetime so the result stays identical."""
    if isinstance(v, str) and len(v) == 26 and v[10] == " " and v[19] == "." and v[0] != "0":
        return v[:10] + "T" + v[11:] + "Z"
    return _naive_time(v if isinstance(v, datetime) else datetime.fromisoformat(str(v)))


def _naive_time(v: datetime) -> str:
    """A naive UTC datetime from the driver (PostgreSQL ``timestamp``) to the canonical form."""
    if v.tzinfo is not None:
        return format_time(v)
    if v.year < 1000:  # strftime does not pad the year: keep format_time's exact output
        return format_time(v.replace(tzinfo=UTC))
    return v.isoformat(timespec="microseconds") + "Z"


def _sqlite_json(v: Any) -> Any:
    # a JSON column has NUMERIC affinity in SQLite: a bare number comes back as a number
    return json.loads(v) if isinstance(v, str | bytes) else v


def raw_normalizers(
    model: type[Base], fields: tuple[str, ...], dialect: str
) -> tuple[Any, ...] | None:
    """Normalizers for the driver's own values (a select without SQLAlchemy's result types),
    or None for a dialect without a fast path. Integers and strings come back from the
    driver as they are stored, so they need nothing; a value of another type (a tampered
    row) then simply hashes differently. The canonical bytes equal ``canonical``'s."""
    if dialect not in ("sqlite", "postgresql"):
        return None
    out: list[Any] = []
    for f in fields:
        t = model.__table__.c[f].type
        if isinstance(t, UTCDateTime):
            out.append(_sqlite_time if dialect == "sqlite" else _naive_time)
        elif isinstance(t, Boolean):
            out.append(bool if dialect == "sqlite" else None)  # SQLite gives 0/1
        elif isinstance(t, JSON):
            # SQLite gives the stored text; psycopg parses json itself. A value that came out
            # of json.loads is already what the round trip in _json_round_trip would give.
            out.append(_sqlite_json if dialect == "sqlite" else None)
        else:
            out.append(None)
    return tuple(out)


def raw_hasher(
    model: type[Base], fields: tuple[str, ...], dialect: str
) -> Callable[[str, Sequence[Any]], str] | None:
    """``hasher(prev_hash, values)``: ``chain_hash(prev_hash, canonical_raw(...))`` in one
    call with everything bound as locals (verification's hot loop), or None for a dialect
    without a fast path."""
    norms = raw_normalizers(model, fields, dialect)
    if norms is None or len(fields) < 2:
        return None  # itemgetter of one field gives a value, not a tuple: the general path
    order = sorted(range(len(fields)), key=fields.__getitem__)
    return _template_hasher(fields, norms, itemgetter(*order))


def dict_hasher(model: type[Base], fields: tuple[str, ...]) -> Callable[[str, Any], str]:
    """``hasher(prev_hash, row)`` for a row given as a dict of column values holding every
    field (the controller chains thousands of rows a second): ``chain_hash(prev_hash,
    canonical_dict(model, row, fields))``, without building the dict ``json.dumps`` sorts."""
    if len(fields) < 2:
        return lambda prev, row: chain_hash(prev, canonical_dict(model, row, fields))
    by_name = sorted(fields)
    return _template_hasher(fields, normalizers(model, fields), itemgetter(*by_name))


def _template_hasher(
    fields: tuple[str, ...], norms: tuple[Any, ...], pick: Callable[[Any], tuple[Any, ...]]
) -> Callable[[str, Any], str]:
    """The hasher of ``canonical``'s bytes, given ``pick``: the values of the fields from a
    row, in the order of the sorted field names; ``norms``: one normalizer per field (in
    ``fields`` order) or None."""
    encode = _C_ENCODE
    if encode is None:  # no C accelerator: the same bytes, more slowly

        def encode(o: Any, _level: int) -> list[str]:
            return [_ENCODER.encode(o)]

    # The object's text is a fixed template: the keys never change, so they are sorted and
    # written once, and each row fills in its values in key order. A value is encoded the
    # way the JSON encoder would: ``str`` by the encoder's own string function, exact ints
    # by their repr, None/True/False as literals; anything else (a float, an enum member, a
    # JSON object from ``detail``) goes through the encoder itself. The bytes are those of
    # ``canonical`` (tests/evidence compare them); the encoder's per-key work for a 20-key
    # dict was most of verification's time.
    order = sorted(range(len(fields)), key=fields.__getitem__)
    template = "{" + ",".join(encode_basestring(fields[i]) + ":%s" for i in order) + "}"
    special = tuple((order.index(i), n) for i, n in enumerate(norms) if n is not None)
    enc_str, int_repr = encode_basestring, int.__repr__

    def other(v: Any) -> str:
        return "".join(encode(v, 0))

    sha256 = hashlib.sha256

    def hasher(prev_hash: str, row: Any) -> str:
        vals = list(pick(row))
        for i, n in special:
            v = vals[i]
            if v is not None:
                vals[i] = n(v)
        text = template % tuple(
            [
                enc_str(v)
                if (t := type(v)) is str
                else "null"
                if v is None
                else int_repr(v)
                if t is int
                else "true"
                if v is True
                else "false"
                if v is False
                else other(v)
                for v in vals
            ]
        )
        return sha256((prev_hash + text).encode()).hexdigest()

    return hasher


def canonical(row: Any, fields: tuple[str, ...]) -> bytes:
    norms = normalizers(type(row), fields)
    return canonical_values(fields, norms, [getattr(row, f) for f in fields])


def canonical_dict(model: type[Base], values: dict[str, Any], fields: tuple[str, ...]) -> bytes:
    """``canonical`` of a row given as a dict of column values (no ORM object: the
    controller chains thousands of rows a second)."""
    return canonical_values(fields, normalizers(model, fields), [values.get(f) for f in fields])


def canonical_event(row: Event) -> bytes:
    return canonical(row, EVENT_FIELDS)


def canonical_audit(row: AuditLog) -> bytes:
    return canonical(row, AUDIT_FIELDS)


def canonical_deletion(row: DeletionRecord) -> bytes:
    return b"nyutai-deletion-v1\n" + canonical(row, DELETION_FIELDS)


def chain_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()


def row_hash(row: Event | AuditLog) -> str:
    """The hash ``row`` should carry, recomputed from its stored fields and prev_hash."""
    fields = EVENT_FIELDS if isinstance(row, Event) else AUDIT_FIELDS
    return chain_hash(row.prev_hash or "", canonical(row, fields))


def checkpoint_message(log: str, seq: int, hash_: str, created_at: datetime) -> bytes:
    """The bytes an Ed25519 checkpoint signature covers."""
    return f"nyutai-checkpoint-v1\n{log}\n{seq}\n{hash_}\n{format_time(created_at)}".encode()
