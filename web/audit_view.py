"""The audit log as people read it: each row's before/after as field-by-field differences
with words for the fields, local times for timestamps and no JSON escapes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.schedule import format_schedule
from domain.words import field_word


@dataclass(frozen=True)
class Change:
    field: str  # the field's word
    before: str | None  # None: the row has no "before" for this field
    after: str | None


def _time(text: str, zone: ZoneInfo) -> str | None:
    if len(text) < 16 or text[4:5] != "-" or "T" not in text:
        return None
    try:
        t = datetime.fromisoformat(text)
        if t.tzinfo is None:  # stored snapshots are UTC
            t = t.replace(tzinfo=UTC)
        return t.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):  # not a time after all (any text can be stored)
        return None


def show_value(key: str, value: Any, locale: str, zone: ZoneInfo) -> str:
    ja = locale.startswith("ja")
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return ("はい" if value else "いいえ") if ja else ("yes" if value else "no")
    if key == "schedule" and isinstance(value, dict):
        return format_schedule(value)
    if isinstance(value, str):
        return _time(value, zone) or value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def changes(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    locale: str,
    zone: ZoneInfo,
    target: str | None = None,
) -> list[Change]:
    """The fields that differ (or, without a before, every field of after), in stored order."""
    b, a = before or {}, after or {}
    keys = list(dict.fromkeys([*b.keys(), *a.keys()]))
    out = []
    for k in keys:
        if before is not None and after is not None and b.get(k) == a.get(k):
            continue
        out.append(
            Change(
                field_word(target, k, locale),
                show_value(k, b.get(k), locale, zone) if before is not None else None,
                show_value(k, a.get(k), locale, zone) if after is not None else None,
            )
        )
    return out
