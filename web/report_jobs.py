"""Monthly reports built in the background, so the report page answers at once at any size.

A month with a million people takes seconds to tens of seconds to gather; a request must not
hold a waitress thread (or the browser) that long. The page asks ``ReportJobs.get``: a report
built within ``WAIT`` seconds is shown at once (every small site); otherwise the page says
how far the build is and reloads itself until it is done. A finished report is kept for
``KEEP`` seconds for the page and its CSV/PDF downloads, then built afresh (so the current
month stays current). One build at a time per console process: the builds share the
machine with the controller.

Several console processes (``[web] processes``) share one build through files in the site's
data directory (``SharedBuilds``): the process that takes a report's lock builds it and
writes its progress and then the finished report there; a process whose request lands while
the lock is held follows that build instead of starting a second one, and a process that
finds a finished report younger than ``KEEP`` reads it. The files are the console's own, in
its private (0600) data directory, which is why reading the report back with pickle is safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from db.reports.monthly import MonthlyReport

log = logging.getLogger(__name__)

WAIT = 1.0  # seconds the request that starts a build waits for it before showing progress
KEEP = 300.0  # seconds a finished report is reused
REPORT_BUILDS_DIR = "report-builds"  # under the site's data directory
FOLLOW_POLL = 0.25  # seconds between looks at another process's build
FORGET_AFTER = 24 * 3600.0  # seconds a finished build's files stay in the data directory

Build = Callable[[Callable[[int, int, str], None]], MonthlyReport]


@dataclass
class ReportJob:
    key: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    done_steps: int = 0
    total_steps: int = 1
    step: str = ""
    finished: float | None = None
    report: MonthlyReport | None = None
    error: BaseException | None = None
    future: Future[None] | None = None

    @property
    def percent(self) -> int:
        return min(99, int(100 * self.done_steps / max(1, self.total_steps)))

    def progress(self, done: int, total: int, step: str) -> None:
        self.done_steps, self.total_steps, self.step = done, total, step


class SharedBuilds:
    """A report's lock, progress and result as files, for console processes on one machine."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _path(self, key: tuple[str, ...], ext: str) -> Path:
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        return self.dir / f"monthly-{digest}.{ext}"

    def lock(self, key: tuple[str, ...]) -> IO[bytes] | None:
        """The build lock, held until the returned file is closed; None: another holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        f = open(self._path(key, "lock"), "ab")  # noqa: SIM115 - closed by the caller
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return None
        return f

    def result(self, key: tuple[str, ...]) -> MonthlyReport | None:
        """The finished report if it is younger than KEEP."""
        path = self._path(key, "pickle")
        try:
            if time.time() - path.stat().st_mtime > KEEP:
                return None
            with path.open("rb") as f:
                report = pickle.load(f)  # noqa: S301 - our own file in the private data dir
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            return None
        return report if isinstance(report, MonthlyReport) else None

    def store(self, key: tuple[str, ...], report: MonthlyReport) -> None:
        path = self._path(key, "pickle")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(report, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        self._forget_old()

    def _forget_old(self) -> None:
        """Results and progress of builds long past (the empty lock files stay: another
        process may hold one)."""
        for old in (*self.dir.glob("monthly-*.pickle"), *self.dir.glob("monthly-*.json")):
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > FORGET_AFTER:
                    old.unlink()

    def progress(self, key: tuple[str, ...]) -> tuple[int, int, str] | None:
        try:
            done, total, step = json.loads(self._path(key, "json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return int(done), int(total), str(step)

    def tell(self, key: tuple[str, ...], done: int, total: int, step: str) -> None:
        path = self._path(key, "json")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([done, total, step]), "utf-8")
        tmp.replace(path)


class ReportJobs:
    def __init__(self, shared: SharedBuilds | None = None) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, ...], ReportJob] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nyutai-report")
        self.shared = shared

    def get(self, key: tuple[str, ...], build: Build, wait: float = WAIT) -> ReportJob:
        """The job for ``key``: running, finished (kept ``KEEP`` s) or started now."""
        now = time.monotonic()
        with self._lock:
            job = self._jobs.get(key)
            stale = job is not None and job.finished is not None and now - job.finished > KEEP
            started = job is None or stale
            if job is None or stale:
                job = ReportJob(key)
                self._jobs[key] = job
                job.future = self._pool.submit(self._run, job, build)
            for k in [k for k, j in self._jobs.items() if j.finished and now - j.finished > KEEP]:
                del self._jobs[k]  # forget old reports: memory stays bounded
        if started and job.future is not None and job.finished is None:  # polls don't wait
            with contextlib.suppress(TimeoutError):  # still running: the page shows progress
                job.future.result(timeout=wait)
        if job.error is not None:
            with self._lock:  # shown once; the next request tries again
                if self._jobs.get(key) is job:
                    del self._jobs[key]
        return job

    def _run(self, job: ReportJob, build: Build) -> None:
        try:
            job.report = self._shared_build(job, build) if self.shared else build(job.progress)
        except BaseException as exc:  # shown on the page; the next request starts again
            log.exception("monthly report %s failed", job.key)
            job.error = exc
        finally:
            job.finished = time.monotonic()

    def _shared_build(self, job: ReportJob, build: Build) -> MonthlyReport:
        """Another process's finished report, or follow its build, or build and share."""
        shared = self.shared
        assert shared is not None
        while True:
            report = shared.result(job.key)
            if report is not None:
                return report
            held = shared.lock(job.key)
            if held is None:  # another console process builds it: show its progress
                told = shared.progress(job.key)
                if told is not None:
                    job.progress(*told)
                time.sleep(FOLLOW_POLL)
                continue
            with held:
                report = shared.result(job.key)  # finished while we waited for the lock
                if report is not None:
                    return report

                def progress(done: int, total: int, step: str) -> None:
                    job.progress(done, total, step)
                    with contextlib.suppress(OSError):
                        shared.tell(job.key, done, total, step)

                report = build(progress)
                shared.store(job.key, report)
                return report
