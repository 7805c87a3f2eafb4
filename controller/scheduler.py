"""The scheduler of the evidence duties: APScheduler 3, in the controller process only.

Jobs live in an SQLAlchemy job store in the nyutai database (table ``apscheduler_jobs``,
ignored by the schema comparison), under fixed ids. Cron times are in the site's zone
(``[site] timezone``). On start, a stored job whose definition (trigger, zone, function,
arguments) is unchanged is kept as it is, with its stored next run time: a restart neither
repeats a run that already happened nor drops one that is due (a run missed while the
controller was down fires once, ``coalesce=True``, if it is less than
``MISFIRE_GRACE_SECONDS`` late). A job whose definition changed is replaced
(``replace_existing=True``). The jobs are idempotent too (controller/jobs.py), so even a
doubled run adds nothing.

**One runner per site.** Several controllers on one database share the job table; each
starts its scheduler paused, and only the holder of the duty lease (a ``site_settings`` row,
db.controllers.take_duty_lease) resumes it. ``DutyRunner`` renews the lease every heartbeat
(``HEARTBEAT_SECONDS``); a controller that stops cleanly gives it up, and one that falls
silent loses it after ``STALE_SECONDS``: another controller takes it at its next beat and
runs the duties from the stored next run times (docs/controller.md, "Scheduled duties").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller import jobs
from db import controllers as ctl_rows
from db.engine import session_scope
from db.migrate import FOREIGN_TABLES
from db.types import utcnow
from domain.config import SiteConfig

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
assert JOB_TABLE in FOREIGN_TABLES
MISFIRE_GRACE_SECONDS = 6 * 3600
JOB_PREFIX = "nyutai."


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[..., Any]
    trigger: Callable[[str], BaseTrigger]  # the site's zone name -> the trigger
    description: str


JOBS = (
    JobSpec(
        "nyutai.expire_visitor_badges",
        jobs.expire_visitor_badges,
        lambda tz: IntervalTrigger(minutes=1, timezone=tz),
        "visitor badges expire at the end of their visit window",
    ),
    JobSpec(
        "nyutai.end_of_day_check",
        jobs.end_of_day_check,
        # every 5 minutes: the end-of-day time is a setting that may change at any time
        lambda tz: IntervalTrigger(minutes=5, timezone=tz),
        "people still inside after the end-of-day time raise an alarm",
    ),
    JobSpec(
        "nyutai.daily_checkpoint",
        jobs.daily_checkpoint,
        lambda tz: CronTrigger(hour=0, minute=5, timezone=tz),
        "sign each log's head",
    ),
    JobSpec(
        "nyutai.nightly_verify",
        jobs.nightly_verify,
        lambda tz: CronTrigger(hour=2, minute=0, timezone=tz),
        "verify the chains and checkpoints; open an incident on failure",
    ),
    JobSpec(
        "nyutai.prune_changes",
        jobs.prune_changes,
        lambda tz: CronTrigger(hour=3, minute=30, timezone=tz),
        "keep the change feed to its last days",
    ),
    JobSpec(
        "nyutai.backup_database",
        jobs.backup_database,
        lambda tz: CronTrigger(hour=3, minute=0, timezone=tz),
        "online backup of the SQLite database, with rotation",
    ),
    JobSpec(
        "nyutai.monthly_report",
        jobs.monthly_report,
        lambda tz: CronTrigger(day=1, hour=4, minute=0, timezone=tz),
        "last month's report (CSV and PDF) on the 1st",
    ),
    JobSpec(
        "nyutai.training_reminders",
        jobs.training_reminders,
        lambda tz: CronTrigger(hour=8, minute=0, timezone=tz),
        "trainings expiring within 30 days",
    ),
)


def _func_ref(func: Callable[..., Any]) -> str:
    return f"{func.__module__}:{func.__qualname__}"


def start_scheduler(
    cfg: SiteConfig,
    session_factory: sessionmaker[Session],
    *,
    paused: bool = False,
    specs: Sequence[JobSpec] = JOBS,
) -> BackgroundScheduler:
    """Start the evidence jobs; stop them with ``scheduler.shutdown()``. ``paused``: stored
    and reconciled, but nothing runs until ``scheduler.resume()`` (DutyRunner)."""
    engine = session_factory.kw.get("bind")
    store = (
        SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
        if engine is not None
        else SQLAlchemyJobStore(url=cfg.database_url, tablename=JOB_TABLE)
    )
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            "max_instances": 1,
        },
        timezone=cfg.site.timezone,
    )
    scheduler.start(paused=True)  # reconcile stored jobs before anything can fire
    try:
        _reconcile(scheduler, cfg, specs)
    except BaseException:
        scheduler.shutdown(wait=False)  # a half-reconciled scheduler must not run
        raise
    if not paused:
        scheduler.resume()
    for job in scheduler.get_jobs():
        log.info("job %s next run %s", job.id, job.next_run_time)
    return scheduler


def _reconcile(scheduler: BackgroundScheduler, cfg: SiteConfig, specs: Sequence[JobSpec]) -> None:
    args = [str(cfg.path)]
    wanted = {spec.id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
            scheduler.remove_job(job.id)
    for spec in specs:
        trigger = spec.trigger(cfg.site.timezone)
        existing = scheduler.get_job(spec.id)
        if (
            existing is not None
            and str(existing.trigger) == str(trigger)
            # str() leaves the zone out: a site that moved zone needs its jobs re-timed
            and str(getattr(existing.trigger, "timezone", "")) == cfg.site.timezone
            and existing.func_ref == _func_ref(spec.func)
            and list(existing.args) == args
        ):
            continue  # keep the stored next run time
        scheduler.add_job(
            spec.func,
            trigger,
            args=args,
            id=spec.id,
            name=spec.description,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            max_instances=1,
        )


class DutyRunner:
    """The scheduled duties of one controller process, run only while it holds the lease.

    ``tick`` renews or takes the lease and resumes or pauses the scheduler to match; a
    thread of its own calls it every ``seconds`` (never the door thread). A database that
    cannot be reached leaves things as they are: the holder keeps running (its duties need
    the database anyway and fail on their own), and nobody else can take the lease then.
    """

    def __init__(
        self,
        cfg: SiteConfig,
        session_factory: sessionmaker[Session],
        me: str,
        *,
        seconds: float = ctl_rows.HEARTBEAT_SECONDS,
        stale_seconds: float = ctl_rows.STALE_SECONDS,
        clock: Callable[[], Any] = utcnow,
        specs: Sequence[JobSpec] = JOBS,
    ) -> None:
        self.cfg, self.sessions, self.me = cfg, session_factory, me
        self.seconds, self.stale_seconds, self.clock = seconds, stale_seconds, clock
        self.specs = specs
        self.scheduler: BackgroundScheduler | None = None
        self.holding = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, thread: bool = True) -> BackgroundScheduler:
        self.scheduler = start_scheduler(self.cfg, self.sessions, paused=True, specs=self.specs)
        self.tick()
        if thread:
            self._thread = threading.Thread(target=self._run, name="duties", daemon=True)
            self._thread.start()
        return self.scheduler

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.tick()
            except Exception:
                log.exception("duty lease: tick failed")

    def tick(self) -> bool:
        """Renew or take the lease; returns whether this process runs the duties now."""
        try:
            with session_scope(self.sessions) as s:
                holder = ctl_rows.take_duty_lease(s, self.me, self.clock(), self.stale_seconds)
        except SQLAlchemyError:
            log.info("duty lease: database unavailable")
            return self.holding
        self._hold(holder == self.me, holder)
        return self.holding

    def _hold(self, mine: bool, holder: str | None) -> None:
        if mine == self.holding or self.scheduler is None:
            return
        self.holding = mine
        if mine:
            log.warning("scheduled duties: run by this controller (%s) from now", self.me)
            self.scheduler.resume()
        else:
            log.warning("scheduled duties: run by controller %s; paused here", holder)
            self.scheduler.pause()

    def stop(self) -> None:
        """Stop the scheduler and give the lease up (another controller takes it at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.holding:
            self.holding = False
            try:
                with session_scope(self.sessions) as s:
                    ctl_rows.release_duty_lease(s, self.me)
            except SQLAlchemyError:
                log.info("duty lease: not released (database unavailable); it goes stale")
