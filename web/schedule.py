"""Weekly schedules as operators type them: "mon-fri 08:00-20:00; sat 09:00-12:00".

Stored as Authorization.schedule {"mon": [["08:00", "20:00"]], ...} (the site's wall time),
the form the controller's decision reads; an empty text means any time (None).
"""

from __future__ import annotations

import re
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
JA_DAYS = dict(zip("月火水木金土日", DAYS, strict=True))  # Japanese operators type 月-金
_DAY = r"[a-z]{3}|[月火水木金土日]"
_PART = re.compile(
    rf"^(?P<first>{_DAY})(?:\s*[-〜~]\s*(?P<last>{_DAY}))?\s*"
    r"(?P<spans>\d{2}:\d{2}-\d{2}:\d{2}(?:\s*,\s*\d{2}:\d{2}-\d{2}:\d{2})*)$"
)


class ScheduleError(ValueError):
    """The schedule text cannot be read; the message quotes the part."""


def _minutes(hhmm: str) -> int:
    h, m = int(hhmm[:2]), int(hhmm[3:])
    if h > 24 or m > 59 or (h == 24 and m):
        raise ScheduleError(hhmm)
    return h * 60 + m


def parse_schedule(text: str) -> dict[str, Any] | None:
    text = text.strip().lower()
    if not text:
        return None
    out: dict[str, list[list[str]]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        m = _PART.match(part)
        names = [JA_DAYS.get(d, d) for d in (m["first"], m["last"] or m["first"])] if m else []
        if not m or any(d not in DAYS for d in names):
            raise ScheduleError(part)
        first, last = DAYS.index(names[0]), DAYS.index(names[1])
        if last < first:
            raise ScheduleError(part)
        for span in m["spans"].split(","):
            start, end = (s.strip() for s in span.split("-"))
            if _minutes(start) >= _minutes(end):
                raise ScheduleError(part)
            for day in DAYS[first : last + 1]:
                out.setdefault(day, []).append([start, end])
    return {d: sorted(out[d]) for d in DAYS if d in out} or None


def format_schedule(schedule: dict[str, Any] | None) -> str:
    """The text form of a stored schedule (days with the same spans are not merged)."""
    if not schedule:
        return ""
    parts = []
    for day in DAYS:
        if day in schedule:
            parts.append(f"{day} " + ", ".join(f"{a}-{b}" for a, b in schedule[day]))
    return "; ".join(parts)
