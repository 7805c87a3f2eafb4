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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from controller import jobs
from db.migrate import FOREIGN_TABLES
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


def start_scheduler(cfg: SiteConfig, session_factory: sessionmaker[Session]) -> BackgroundScheduler:
    """Start the evidence jobs; stop them with ``scheduler.shutdown()``."""
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
        _reconcile(scheduler, cfg)
    except BaseException:
        scheduler.shutdown(wait=False)  # a half-reconciled scheduler must not run
        raise
    scheduler.resume()
    for job in scheduler.get_jobs():
        log.info("job %s next run %s", job.id, job.next_run_time)
    return scheduler


def _reconcile(scheduler: BackgroundScheduler, cfg: SiteConfig) -> None:
    args = [str(cfg.path)]
    wanted = {spec.id for spec in JOBS}
    for job in scheduler.get_jobs():
        if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
            scheduler.remove_job(job.id)
    for spec in JOBS:
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
