"""A one-line progress display for long commands (verify, purge, the monthly report) on a
terminal.

``terminal_progress(quiet)`` gives a callback ``(label, done, total)`` that redraws one line
on stderr (rows, rate, time left), or None when stderr is not a terminal or ``--quiet`` was
given: a scheduler, a pipe or a log file gets no carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from db.verify import Progress

MIN_INTERVAL = 0.2  # seconds between redraws: a redraw costs more than a batch of rows


class TerminalProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.label: str | None = None
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if label != self.label:  # a new phase (the next log): start its clock
            if self.label is not None:
                self.stream.write("\n")
            self.label, self.t0, self.last = label, now, 0.0
        finished = done >= total
        if not finished and now - self.last < MIN_INTERVAL:
            return
        self.last = now
        self.stream.write("\r" + line(label, done, total, now - self.t0) + "\x1b[K")
        if finished:
            self.stream.write("\n")
            self.label = None
        self.stream.flush()


def line(label: str, done: int, total: int, elapsed: float) -> str:
    """``events: 120,000/842,000 rows (14%)  61,000 rows/s  0:12 left``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    pct = f" ({done * 100 // total}%)" if total else ""
    if done >= total:
        left = f"{_clock(elapsed)} total"
    elif rate > 0:
        left = f"{_clock((total - done) / rate)} left"
    else:
        left = "time left unknown"
    return f"{label}: {done:,}/{total:,} rows{pct}  {rate:,.0f} rows/s  {left}"


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def terminal_progress(quiet: bool, stream: TextIO | None = None) -> Progress | None:
    out = stream if stream is not None else sys.stderr
    if quiet or not out.isatty():
        return None
    return TerminalProgress(out)


class StepProgress:
    """For work told in steps rather than rows (the monthly report's build): one line,
    ``monthly report: 3/9 steps (per person)  0:12``, ended by ``finish``."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int, step: str) -> None:
        elapsed = _clock(time.monotonic() - self.t0)
        text = f"{self.label}: {done}/{total} steps ({step})  {elapsed}"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write(f"\r{self.label}: done in {_clock(time.monotonic() - self.t0)}\x1b[K\n")
        self.stream.flush()


def step_progress(label: str, quiet: bool, stream: TextIO | None = None) -> StepProgress | None:
    out = stream if stream is not None else sys.stderr
    if quiet or not out.isatty():
        return None
    return StepProgress(label, out)
