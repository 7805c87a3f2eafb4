"""Weekly schedules: the ONE rule for reading what an operator types and for matching a time.

Operators type ``mon-fri 08:00-20:00; sat 09:00-12:00``, ``月-金 08:00-20:00``,
``every day 18:00-08:00`` / ``毎日 18:00-08:00`` or just ``18:00-08:00`` (every day).
Stored (Authorization.schedule) as ``{"mon": [["08:00", "20:00"]], ...}`` in the site's
wall time; an empty text means any time (None).

A span whose end is not after its start runs overnight: ``mon 18:00-08:00`` starts on
Monday at 18:00 and ends on Tuesday at 08:00. The web form (parse_schedule) and the
controller's decision (within_schedule) both use this module, so what the form accepts
is exactly what the door does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
JA_DAYS = dict(zip("月火水木金土日", DAYS, strict=True))  # Japanese operators type 月-金
# words for all seven days, in the languages the console speaks
EVERY_DAY = ("every day", "everyday", "daily", "毎日", "全日", "mon-sun", "月-日")
_DAY = r"[a-z]{3}|[月火水木金土日]"
_SPAN = r"\d{1,2}:\d{2}\s*[-〜~]\s*\d{1,2}:\d{2}"
_SPANS = rf"(?P<spans>{_SPAN}(?:\s*[,、]\s*{_SPAN})*)"
_PART = re.compile(rf"^(?:(?P<first>{_DAY})(?:\s*[-〜~]\s*(?P<last>{_DAY}))?\s*)?{_SPANS}$")
_EVERY = re.compile(r"^(?:" + "|".join(re.escape(w) for w in EVERY_DAY) + rf")\s*{_SPANS}$")


class ScheduleError(ValueError):
    """The schedule text cannot be read; the message quotes the part."""


def _minutes(hhmm: str) -> int:
    h, m = int(hhmm[:-3]), int(hhmm[-2:])
    if h > 24 or m > 59 or (h == 24 and m):
        raise ScheduleError(hhmm)
    return h * 60 + m


def _hhmm(text: str) -> str:
    """``8:00`` -> ``08:00`` (stored times compare as text)."""
    h, m = text.split(":")
    return f"{int(h):02d}:{m}"


def _days(first: str | None, last: str | None, part: str) -> list[str]:
    if first is None:
        return list(DAYS)
    names = [JA_DAYS.get(d, d) for d in (first, last or first)]
    if any(d not in DAYS for d in names):
        raise ScheduleError(part)
    a, b = DAYS.index(names[0]), DAYS.index(names[1])
    if b < a:  # fri-mon: the range wraps over the weekend
        return list(DAYS[a:] + DAYS[: b + 1])
    return list(DAYS[a : b + 1])


def parse_schedule(text: str) -> dict[str, Any] | None:
    """The stored form of a typed schedule; raises ScheduleError naming the bad part."""
    text = re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip().lower()
    if not text:
        return None
    out: dict[str, list[list[str]]] = {}
    for part in (p.strip() for p in re.split(r"[;；]", text)):
        if not part:
            continue
        every = _EVERY.match(part)
        m = every or _PART.match(part)
        if m is None:
            raise ScheduleError(part)
        days = list(DAYS) if every else _days(m["first"], m["last"], part)
        for span in re.split(r"\s*[,、]\s*", m["spans"]):
            start, end = (_hhmm(s.strip()) for s in re.split(r"[-〜~]", span))
            a, b = _minutes(start), _minutes(end)
            if a == b or a == 24 * 60:  # an empty span, or one starting at the day's end
                raise ScheduleError(part)
            if b < a and b == 0:
                end = "24:00"  # 18:00-00:00 is the evening, not an overnight span
            for day in days:
                if [start, end] not in out.setdefault(day, []):
                    out[day].append([start, end])
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


def _spans(schedule: dict[str, Any], day: str) -> list[tuple[str, str]]:
    spans = schedule.get(day) or []
    out = []
    for span in spans if isinstance(spans, list) else []:
        if isinstance(span, list | tuple) and len(span) == 2:
            out.append((str(span[0]), str(span[1])))
    return out


def within_schedule(schedule: dict[str, Any] | None, local: datetime) -> bool:
    """Whether the wall time ``local`` (already in the site's zone) falls in the schedule.

    None or {} means any time. A span [start, end) on its day; an overnight span
    (end <= start) covers [start, 24:00) on its day and [00:00, end) on the next day.
    """
    if not schedule:
        return True
    hhmm = local.strftime("%H:%M")
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local - timedelta(days=1)).weekday()]
    for start, end in _spans(schedule, today):
        if start < end and start <= hhmm < end:
            return True
        if end <= start and hhmm >= start:
            return True
    return any(end <= start and hhmm < end for start, end in _spans(schedule, yesterday))
