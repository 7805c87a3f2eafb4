"""Scheduled duties, as importable functions of plain arguments (the site file's path).

APScheduler stores jobs by reference (``controller.jobs:nightly_verify``) with their
arguments in the database, so each job loads the site file and opens its own engine; each
is idempotent, so a run repeated after a crash or restart adds nothing twice.

Calendar days, the end-of-day time, months and file stamps are in the site's zone
(``[site] timezone``), handed to each duty as ``zone``.

Alarms raised here (``visitor_still_inside``, ``person_still_inside``, ``integrity_failure``)
are plain Alarm rows: the controller owns door state and the siren, and these alarms drive
neither; the consoles show them like any other.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db import changes
from db.checkpoints import SigningKeyError, create_checkpoints, load_key, public_hex, trusted_keys
from db.engine import make_engine, make_session_factory
from db.eventlog import append_audit
from db.incidents import open_integrity_incident
from db.models import (
    Alarm,
    AuditLog,
    Credential,
    CredentialState,
    Event,
    Person,
    Presence,
    Visit,
)
from db.review import TRAINING_EXPIRED, TRAINING_EXPIRING, review_items
from db.settings import end_of_day
from db.types import utcnow
from db.verify import verify_all
from domain.config import SiteConfig, load_config
from domain.reasons import AlarmKind

log = logging.getLogger(__name__)
SYSTEM = "system"  # the username on audit rows written by scheduled jobs


@contextmanager
def site(config_path: str) -> Iterator[tuple[SiteConfig, sessionmaker[Session]]]:
    cfg = load_config(config_path)
    engine = make_engine(cfg.database_url)
    try:
        yield cfg, make_session_factory(engine)
    finally:
        engine.dispose()


def _audit(
    session: Session, action: str, target_type: str, target_id: str, **after: object
) -> None:
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            username=SYSTEM,
            action=action,
            target_type=target_type,
            target_id=target_id,
            after=dict(after),
        ),
    )


# --- visitor badges ----------


def expire_badges(session: Session, now: datetime) -> int:
    """Deactivate temporary badges whose visit window (or own validity) has ended."""
    ended_visit = select(Visit.badge_credential_id).where(
        Visit.badge_credential_id.is_not(None),
        Visit.expected_until <= now,
        Visit.signed_out_at.is_(None),
    )
    creds = session.scalars(
        select(Credential).where(
            Credential.temporary.is_(True),
            Credential.state == CredentialState.ACTIVE,
            (Credential.valid_until <= now) | Credential.id.in_(ended_visit),
        )
    ).all()
    expired = 0
    for c in creds:
        # A badge reissued for a later visit that is still running stays active.
        running = session.scalar(
            select(Visit.id).where(Visit.badge_credential_id == c.id, Visit.expected_until > now)
        )
        if running is not None and (c.valid_until is None or c.valid_until > now):
            continue
        c.state = CredentialState.INACTIVE
        _audit(session, "badge.expired", "credential", str(c.id), state=c.state, label=c.label)
        expired += 1
    return expired


def expire_visitor_badges(config_path: str) -> int:
    with site(config_path) as (_cfg, factory), factory.begin() as s:
        return expire_badges(s, utcnow())


# --- the change feed ----------


def prune_changes(config_path: str) -> int:
    """Keep the change feed to its last ``db.changes.KEEP_DAYS`` days."""
    with site(config_path) as (_cfg, factory), factory.begin() as s:
        pruned = changes.prune(s, utcnow() - timedelta(days=changes.KEEP_DAYS))
    if pruned:
        log.info("change feed: %d changes older than %d days pruned", pruned, changes.KEEP_DAYS)
    return pruned


# --- end of day ----------


def raise_still_inside(session: Session, now: datetime, zone: ZoneInfo) -> list[Alarm]:
    """After today's end-of-day time (the site's wall time), one alarm per person still
    inside (once a day).

    It names the people the monthly report lists as "still inside at day end" for today:
    who was inside *at* the end-of-day time (someone who came in after it, before the job
    ran, was not), with the same "since" (the time of the entry's grant, as in the report;
    the presence row keeps the moment the door opened, a few seconds later).
    """
    today = now.astimezone(zone).date()
    eod = datetime.combine(today, end_of_day(session), zone)
    if now < eod:
        return []
    raised = []
    rows = session.execute(
        select(Presence, Event.occurred_at)
        .outerjoin(Event, Event.id == Presence.event_id)
        .where(Presence.entered_at <= eod)
        .order_by(Presence.entered_at)
    ).all()
    for pr, granted_at in rows:
        since = granted_at if granted_at is not None else pr.entered_at
        person = session.get(Person, pr.person_id)
        kind = (
            AlarmKind.VISITOR_STILL_INSIDE
            if person is not None and person.is_visitor
            else AlarmKind.PERSON_STILL_INSIDE
        )
        already = session.scalar(
            select(Alarm.id).where(
                Alarm.kind == kind,
                Alarm.person_id == pr.person_id,
                Alarm.area_id == pr.area_id,
                Alarm.raised_at >= eod,
            )
        )
        if already is not None:
            continue
        alarm = Alarm(
            kind=kind,
            area_id=pr.area_id,
            person_id=pr.person_id,
            raised_at=now,
            detail={"entered_at": since.isoformat(), "visit_id": pr.visit_id},
        )
        session.add(alarm)
        raised.append(alarm)
    session.flush()
    return raised


def end_of_day_check(config_path: str) -> int:
    with site(config_path) as (cfg, factory), factory.begin() as s:
        return len(raise_still_inside(s, utcnow(), cfg.zone))


# --- integrity ----------


FULL_VERIFY_WEEKDAY = 6  # Sunday, site time: the nightly job checks the whole chains then


def run_verification(session: Session, key_path: Path, *, since: datetime | None = None) -> bool:
    """Verify both logs (from the last good signed checkpoint made before ``since`` when
    given, else all of them); on failure open an integrity incident (deduplicated)."""
    keys: set[str] | None = None
    try:
        keys = trusted_keys(key_path) or None
    except SigningKeyError as exc:
        log.error("verification without signatures: %s", exc)
    result = verify_all(session, keys, since=since)
    for r in result.logs:
        log.info(
            "verify %s%s: %d rows, ok=%s",
            r.log,
            " (since the last checkpoint)" if since else "",
            r.rows_checked,
            r.ok,
        )
    if result.ok:
        return True
    findings = [str(f) for r in result.logs for f in r.findings]
    log.error("log integrity failure: %s", findings[0])
    open_integrity_incident(session, findings)
    return False


def nightly_verify(config_path: str, full: bool | None = None) -> bool:
    """Nightly: only what is new since the last signed checkpoint (the checkpoint itself is
    checked against its row), so it takes seconds at any log size; the whole chains once a
    week (``FULL_VERIFY_WEEKDAY``) or when ``full`` is True."""
    with site(config_path) as (cfg, factory), factory.begin() as s:
        now = utcnow()
        if full is None:
            full = now.astimezone(cfg.zone).weekday() == FULL_VERIFY_WEEKDAY
        return run_verification(
            s, cfg.data_path(cfg.evidence.key_file), since=None if full else now
        )


def daily_checkpoint(config_path: str) -> int:
    with site(config_path) as (cfg, factory):
        try:
            key = load_key(cfg.data_path(cfg.evidence.key_file))
        except SigningKeyError as exc:
            log.error("no checkpoint today: %s", exc)
            return 0
        with factory.begin() as s:
            return len(create_checkpoints(s, key, zone=cfg.zone))


# --- monthly report ----------


def previous_month(now: datetime, zone: ZoneInfo) -> str:
    """The calendar month before ``now``'s month in the site's zone, as YYYY-MM."""
    first = now.astimezone(zone).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def write_monthly_report(
    session: Session, cfg: SiteConfig, month: str, now: datetime | None = None
) -> list[Path]:
    """CSV and PDF of ``month`` into the report directory; existing files are kept."""
    from db.reports.fonts import FontMissingError
    from db.reports.monthly import build_monthly_report
    from db.reports.monthly_csv import write_monthly_csv
    from db.reports.monthly_pdf import write_monthly_pdf

    out = cfg.data_path(cfg.evidence.report_dir) / month
    csv_path, pdf_path = out / f"monthly-{month}.csv", out / f"monthly-{month}.pdf"
    if csv_path.exists() and pdf_path.exists():
        return []
    keys: list[str] = []
    key_path = cfg.data_path(cfg.evidence.key_file)
    if key_path.exists():
        keys.append(public_hex(load_key(key_path)))
    report = build_monthly_report(
        session, month, zone=cfg.zone, site_name=cfg.site.name, public_keys=keys, now=now
    )
    written = []
    if not csv_path.exists():
        write_monthly_csv(report, csv_path)
        written.append(csv_path)
    if not pdf_path.exists():
        try:
            write_monthly_pdf(report, pdf_path)
            written.append(pdf_path)
        except FontMissingError as exc:
            log.error("monthly report PDF not written: %s", exc)
    for p in written:
        _audit(session, "report.monthly", "report", month, file=p.name)
    return written


def monthly_report(config_path: str) -> int:
    with site(config_path) as (cfg, factory), factory.begin() as s:
        return len(write_monthly_report(s, cfg, previous_month(utcnow(), cfg.zone)))


# --- training reminders ----------


def remind_trainings(session: Session, now: datetime, zone: ZoneInfo) -> int:
    """One audit row a day (the site's calendar day) listing trainings that expire within 30
    days (or have expired)."""
    day = now.astimezone(zone).date().isoformat()
    done = session.scalar(
        select(AuditLog.id).where(AuditLog.action == "reminder.training", AuditLog.target_id == day)
    )
    if done is not None:
        return 0
    items = [
        i
        for i in review_items(session, now, zone=zone)
        if i.finding in (TRAINING_EXPIRING, TRAINING_EXPIRED)
    ]
    people = sorted({(i.person_id, i.person, i.finding, i.detail) for i in items})
    if not people:
        return 0
    for _pid, name, finding, detail in people:
        log.warning("training reminder: %s %s (%s)", name, finding, detail)
    _audit(
        session,
        "reminder.training",
        "day",
        day,
        people=[{"person_id": p, "finding": f, "detail": d} for p, _n, f, d in people],
    )
    return len(people)


def training_reminders(config_path: str) -> int:
    with site(config_path) as (cfg, factory), factory.begin() as s:
        return remind_trainings(s, utcnow(), cfg.zone)


# --- backups ----------


def backup_sqlite(
    database_url: str, backup_dir: Path, keep: int, now: datetime, zone: ZoneInfo
) -> Path | None:
    """Copy a live SQLite database with the online backup API; keep the newest ``keep``.
    The file name carries ``now`` in the site's wall time."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        log.info("backup skipped: only file SQLite databases are backed up here (use pg_dump)")
        return None
    backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.astimezone(zone).strftime("%Y%m%d-%H%M%S")
    dest = backup_dir / f"nyutai-{stamp}.db"
    tmp = dest.with_suffix(".part")
    src = sqlite3.connect(url.database)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # consistent even while the controller writes
        finally:
            dst.close()
    finally:
        src.close()
    tmp.replace(dest)
    for old in sorted(backup_dir.glob("nyutai-*.db"))[:-keep]:
        old.unlink()
    log.info("database backed up to %s", dest)
    return dest


def backup_database(config_path: str) -> str | None:
    cfg = load_config(config_path)
    path = backup_sqlite(
        cfg.database_url,
        cfg.data_path(cfg.evidence.backup_dir),
        cfg.evidence.backups_keep,
        utcnow(),
        cfg.zone,
    )
    return str(path) if path else None
