"""Delivering host notifications by SMTP (standard library), off the guard's request.

``BackgroundDuties`` is a daemon thread the console starts next to the web server
(``nyutai web`` and ``nyutai demo``). Every few seconds it:

1. withdraws commands that expired while the controller was away (db.commands),
2. scans the event log for visitors' first granted entries and queues notifications
   (db.notifications.scan_first_entries; the controller's door path is not involved),
3. sends the notifications that are due, each attempt leased by one conditional UPDATE so
   two console processes never send the same mail twice, and retries failures with backoff.

A mail server that refuses, hangs (bounded by ``[mail] timeout_seconds``) or is missing
never reaches the guard: the desk only wrote queue rows.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.commands import expire_overdue
from db.engine import session_scope
from db.models import Notification
from db.notifications import due, record_attempt, scan_first_entries
from db.types import utcnow
from domain.config import MailSection, SiteConfig
from domain.vocabulary import NotificationState

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # an attempt in flight; longer than any SMTP timeout


class MailError(Exception):
    """The mail could not be handed to the server; the message is safe to store."""


def mail_configured(mail: MailSection) -> bool:
    return bool(mail.host)


def read_password(mail: MailSection, data_dir: Path) -> str | None:
    if not mail.password_file:
        return None
    path = Path(mail.password_file)
    path = path if path.is_absolute() else data_dir / path
    return path.read_text(encoding="utf-8").strip()


def build_message(mail: MailSection, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = mail.sender
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    msg.set_content(body, charset="utf-8")
    return msg


def send_mail(mail: MailSection, password: str | None, msg: EmailMessage) -> None:
    """Hand one message to the server; raises MailError with a reason (never the password)."""
    port = mail.effective_port
    try:
        smtp: smtplib.SMTP
        if mail.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                mail.host,
                port,
                timeout=mail.timeout_seconds,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(mail.host, port, timeout=mail.timeout_seconds)
        with smtp:
            if mail.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if mail.user:
                smtp.login(mail.user, password or "")
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"authentication refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"server answered {exc.smtp_code}: {_text(exc.smtp_error)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"recipient refused: {', '.join(exc.recipients)}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from None


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _lease(session: Session, row_id: int, now: datetime) -> bool:
    taken = session.execute(
        update(Notification)
        .where(
            Notification.id == row_id,
            Notification.state == NotificationState.QUEUED,
            Notification.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(taken, "rowcount", 0))


def deliver_due(
    factory: sessionmaker[Session], mail: MailSection, password: str | None, now: datetime
) -> tuple[int, int]:
    """Send what is due; returns (sent, failed attempts). No transaction is held open while
    the server is being talked to."""
    sent = failed = 0
    with session_scope(factory) as s:
        ids = due(s, now)
    for row_id in ids:
        with session_scope(factory) as s:
            if not _lease(s, row_id, now):
                continue
            row = s.get(Notification, row_id)
            assert row is not None
            msg = build_message(mail, row.address or "", row.subject, row.body)
        error: str | None = None
        try:
            send_mail(mail, password, msg)
        except MailError as exc:
            error = str(exc)
            log.warning("notification %s not sent (will retry): %s", row_id, error)
        with session_scope(factory) as s:
            row = s.get(Notification, row_id)
            assert row is not None
            record_attempt(row, utcnow(), error, max_attempts=mail.max_attempts)
        if error is None:
            sent += 1
        else:
            failed += 1
    return sent, failed


class BackgroundDuties(threading.Thread):
    """The console's own periodic work (see the module docstring)."""

    def __init__(
        self, cfg: SiteConfig, factory: sessionmaker[Session], interval: float = 5.0
    ) -> None:
        super().__init__(name="nyutai-web-duties", daemon=True)
        self.cfg, self.factory, self.interval = cfg, factory, interval
        self.zone = ZoneInfo(cfg.site.timezone)
        self.stopping = threading.Event()

    def run_once(self, now: datetime | None = None) -> tuple[int, int]:
        now = now or utcnow()
        with session_scope(self.factory) as s:
            expired = expire_overdue(s, now)
            if expired:
                log.info("%d queued command(s) expired before the controller took them", expired)
            scan_first_entries(
                s, self.zone, mail_configured=mail_configured(self.cfg.mail), now=now
            )
        if not mail_configured(self.cfg.mail):
            return 0, 0
        try:
            password = read_password(self.cfg.mail, self.cfg.data_dir)
        except OSError as exc:
            log.error("mail.password_file cannot be read: %s", exc.strerror)
            return 0, 0
        return deliver_due(self.factory, self.cfg.mail, password, now)

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # a duty must outlive a bad round (database restart, ...)
                log.exception("background duty round failed; next round in %s s", self.interval)

    def stop(self) -> None:
        self.stopping.set()
