"""Monthly reports built in the background, so the report page answers at once at any size.

A month with a million people takes seconds to tens of seconds to gather; a request must not
hold a waitress thread (or the browser) that long. The page asks ``ReportJobs.get``: a report
built within ``WAIT`` seconds is shown at once (every small site); otherwise the page says
how far the build is and reloads itself until it is done. A finished report is kept for
``KEEP`` seconds for the page and its CSV/PDF downloads, then built afresh (so the current
month stays current). One build at a time per console process: the builds share the
machine with the controller. The registry is per process: with several console processes
(``[web] processes``) a reload may land on another one, which then builds its own copy of
the same report (the same figures: the report reads committed rows only).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from db.reports.monthly import MonthlyReport

log = logging.getLogger(__name__)

WAIT = 1.0  # seconds the request that starts a build waits for it before showing progress
KEEP = 300.0  # seconds a finished report is reused


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


class ReportJobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, ...], ReportJob] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nyutai-report")

    def get(
        self,
        key: tuple[str, ...],
        build: Callable[[Callable[[int, int, str], None]], MonthlyReport],
        wait: float = WAIT,
    ) -> ReportJob:
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

    @staticmethod
    def _run(
        job: ReportJob, build: Callable[[Callable[[int, int, str], None]], MonthlyReport]
    ) -> None:
        try:
            job.report = build(job.progress)
        except BaseException as exc:  # shown on the page; the next request starts again
            log.exception("monthly report %s failed", job.key)
            job.error = exc
        finally:
            job.finished = time.monotonic()
