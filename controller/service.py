"""Running the controller as a service: schema check, signals, readiness, clean stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import OperationalError

from controller.daemon import Controller, controller_engine
from controller.scheduler import DutyRunner
from controller.wiring import check_wiring
from db.engine import make_engine, make_session_factory
from db.files import keep_files_private
from db.migrate import current_heads
from domain.config import SiteConfig
from domain.reasons import Reason
from hardware.sdnotify import notify

log = logging.getLogger(__name__)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this version of nyutai needs."""


def check_schema(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            have = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    if have != set(current_heads()):
        raise SchemaOutOfDate(
            f"database schema is {sorted(have) or 'empty'}, expected {list(current_heads())}: "
            "run 'nyutai db upgrade --config FILE'"
        )


def build_controller(cfg: SiteConfig, controller_id: str | None = None) -> Controller:
    """The controller ``controller_id`` (default: the file's [controller] id) of the site."""
    check_wiring(cfg.for_controller(controller_id))
    check_schema(cfg.database_url)
    engine = controller_engine(cfg.database_url)
    return Controller(
        cfg, session_factory=make_session_factory(engine), controller_id=controller_id
    )


def run_until_signalled(controller: Controller, stop: threading.Event | None = None) -> None:
    """Start, tell systemd we are ready, wait for SIGTERM/SIGINT, stop (strikes locked)."""
    keep_files_private()  # the journal, snapshots, backups and reports it writes are 0600
    stop = stop or threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
    controller.start()
    scheduler = start_duties(controller)
    _notify("READY=1")
    log.info(
        "controller running with %d doors and %d readers",
        len(controller.doors),
        len(controller.readers),
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        _notify("STOPPING=1")
        scheduler.stop()
        controller.stop()
        log.info("controller stopped; every strike is locked")


DUTY_ATTEMPTS = 20


def start_duties(controller: Controller) -> DutyRunner:
    """The scheduled evidence duties (APScheduler 3) run in a controller process only, and
    in one controller of the site at a time: the holder of the duty lease (DutyRunner).
    The doors are already working: a job table locked by their writes past the short busy
    timeout is tried again, not a reason to stop the controller."""
    for _ in range(DUTY_ATTEMPTS - 1):
        runner = DutyRunner(controller.cfg, controller.sessions, controller.controller_id)
        try:
            runner.start()
            return runner
        except OperationalError as exc:
            log.warning(
                "scheduled duties not started (%s: %s); trying again",
                Reason.DATABASE_UNAVAILABLE.value,
                exc.__class__.__name__,
            )
            time.sleep(0.5)
    runner = DutyRunner(controller.cfg, controller.sessions, controller.controller_id)
    runner.start()
    return runner


def _notify(message: str) -> None:
    notify(message)
