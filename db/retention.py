"""Retention and deletion (5(6), 5(10)): purges after retention, with a signed tombstone.

Records are kept until ``retention_years`` (default 1) after the contract end date
(SiteSetting ``contract_end``, a calendar date in the site's zone). A purge:

1. is refused, and the refusal audited, when the contract end is unknown, the retention
   period has not run out, the range reaches past the contract end, the approver is not an
   active manager, the log fails verification (a purge must not erase evidence of tampering)
   or the certificate cannot be printed (no Japanese font);
2. removes the oldest rows of one log (a prefix of the chain: everything before ``before``);
3. writes a DeletionRecord, the tombstone: range, counts, the first and last purged hashes,
   requester and approver, signed with the checkpoint key. ``verify`` resumes the chain from
   the tombstone's ``last_hash``, so the log stays verifiable;
4. produces a deletion certificate (PDF) and stores its SHA-256 on the record;
5. appends an audit row ``retention.purge`` with the same facts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.chain import canonical_deletion, chain_where, log_controller, log_model
from db.checkpoints import public_hex, sign
from db.eventlog import append_audit, chain_head
from db.models import AuditLog, DeletionRecord, Operator, Role
from db.reports.fonts import FontMissingError, find_cjk_font
from db.settings import RETENTION_YEARS, SettingError, contract_end, get_setting
from db.types import utcnow

log = logging.getLogger(__name__)
LOG_NAMES_JA = {"events": "入退室記録 (events)", "audit": "操作記録 (audit log)"}


class PurgeRefused(Exception):
    """A purge was refused; ``code`` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class PurgePlan:
    log: str
    from_seq: int
    to_seq: int
    from_time: datetime
    to_time: datetime
    row_count: int
    first_hash: str
    last_hash: str


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def retention_end(session: Session) -> date | None:
    """The first date (the site's calendar) on which the contract's records may be purged."""
    end = contract_end(session)
    if end is None:
        return None
    return _add_years(end, int(get_setting(session, RETENTION_YEARS))) + timedelta(days=1)


def contract_end_boundary(session: Session, zone: ZoneInfo) -> datetime | None:
    """The instant the contract's last day ends in the site's ``zone`` (records after it
    belong to later work)."""
    end = contract_end(session)
    if end is None:
        return None
    return datetime.combine(end + timedelta(days=1), time(0), zone)


def _refuse(
    session: Session, code: str, message: str, log_name: str, before: datetime, op: Operator | None
) -> PurgeRefused:
    log.warning("purge of %s before %s refused: %s (%s)", log_name, before, code, message)
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            operator_id=op.id if op else None,
            username=op.username if op else None,
            action="retention.purge_refused",
            target_type="log",
            target_id=log_name,
            after={"reason": code, "message": message, "before": before.isoformat()},
        ),
    )
    # The refusal must stay on record even though the caller sees an exception.
    session.commit()
    return PurgeRefused(code, message)


def check_allowed(
    session: Session, before: datetime, now: datetime, zone: ZoneInfo
) -> tuple[str, str] | None:
    """(code, message) why purging rows older than ``before`` is not allowed now, or None.
    Dates are the site's calendar days (``zone``)."""
    try:
        until = retention_end(session)
    except SettingError as exc:  # a stored value breaking the rules never opens a purge
        return "setting_invalid", str(exc)
    if until is None:
        return "retention_unknown", "the contract end date is not set: nothing can be purged"
    today = now.astimezone(zone).date()
    if today < until:
        return (
            "inside_retention",
            f"records are kept until {until - timedelta(days=1)} "
            f"(contract end + {get_setting(session, RETENTION_YEARS)} year(s))",
        )
    boundary = contract_end_boundary(session, zone)
    assert boundary is not None
    if before > boundary:
        return (
            "inside_retention",
            "the range reaches past the contract end: later records have their own retention",
        )
    return None


def _known_log(log_name: str) -> bool:
    try:
        log_model(log_name)
    except ValueError:
        return False
    return True


def plan_purge(session: Session, log_name: str, before: datetime) -> PurgePlan | None:
    """The chain prefix older than ``before`` (stopping at the first newer row), or None."""
    model = log_model(log_name)  # ValueError for an unknown log
    mine = chain_where(log_name)  # one controller's chain: never another's rows
    first_seq = session.scalar(select(func.min(model.seq)).where(model.seq.is_not(None), *mine))
    if first_seq is None:
        return None
    stop = session.scalar(
        select(func.min(model.seq)).where(
            model.seq.is_not(None), model.occurred_at >= before, *mine
        )
    )
    to_seq = (
        (stop - 1) if stop is not None else chain_head(session, model, log_controller(log_name))[0]
    )
    if to_seq < first_seq:
        return None
    in_range = (model.seq >= first_seq) & (model.seq <= to_seq)
    count, t0, t1 = session.execute(
        select(func.count(), func.min(model.occurred_at), func.max(model.occurred_at)).where(
            in_range, *mine
        )
    ).one()
    first_hash = session.scalar(select(model.hash).where(model.seq == first_seq, *mine))
    last_hash = session.scalar(select(model.hash).where(model.seq == to_seq, *mine))
    return PurgePlan(
        log_name, first_seq, to_seq, t0, t1, int(count), str(first_hash), str(last_hash)
    )


def purge(
    session: Session,
    log_name: str,
    before: datetime,
    *,
    requested_by: Operator | None,
    approved_by: Operator | None,
    key: Ed25519PrivateKey,
    certificate_dir: Path,
    zone: ZoneInfo,
    site_name: str = "nyutai",
    now: datetime | None = None,
    before_commit: Callable[[DeletionRecord], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DeletionRecord:
    """Purge one log's rows older than ``before`` (commits; raises PurgeRefused). Dates are
    judged, and the certificate's times printed, in the site's ``zone``.

    ``before_commit`` runs inside the purge's transaction (the CLI marks its approval used
    there, so an approval is spent exactly when the purge happens). ``progress`` is shown
    during the verification that precedes the purge (its long part), see db.verify."""
    from db.verify import verify_log  # verify imports checkpoints; keep import order simple

    now = now or utcnow()
    if not _known_log(log_name):
        raise _refuse(session, "unknown_log", f"no log {log_name!r}", log_name, before, None)
    reason = check_allowed(session, before, now, zone)
    if reason:
        raise _refuse(session, *reason, log_name, before, requested_by)
    if approved_by is None or approved_by.role != Role.MANAGER or not approved_by.active:
        raise _refuse(
            session,
            "approval_required",
            "a purge needs the approval of an active manager",
            log_name,
            before,
            requested_by,
        )
    if requested_by is not None and requested_by.id == approved_by.id:
        raise _refuse(
            session,
            "approval_required",
            "the requester cannot approve their own purge: a second person must",
            log_name,
            before,
            requested_by,
        )
    check = verify_log(session, log_name, {public_hex(key)}, progress=progress)
    if not check.ok:
        raise _refuse(
            session,
            "chain_broken",
            f"the log fails verification ({check.first}); purging would erase the evidence",
            log_name,
            before,
            requested_by,
        )
    try:  # the certificate is part of the purge: check its font before deleting anything
        find_cjk_font()
    except FontMissingError as exc:
        raise _refuse(
            session, "certificate_unavailable", str(exc), log_name, before, requested_by
        ) from None
    plan = plan_purge(session, log_name, before)
    if plan is None:
        raise _refuse(
            session, "nothing_to_purge", "no records before that time", log_name, before, None
        )

    model = log_model(log_name)
    session.execute(
        delete(model).where(
            model.seq >= plan.from_seq, model.seq <= plan.to_seq, *chain_where(log_name)
        ),
        execution_options={"synchronize_session": False},
    )
    rec = DeletionRecord(
        created_at=now,
        log=log_name,
        from_seq=plan.from_seq,
        to_seq=plan.to_seq,
        from_time=plan.from_time,
        to_time=plan.to_time,
        row_count=plan.row_count,
        first_hash=plan.first_hash,
        last_hash=plan.last_hash,
        requested_by=requested_by.id if requested_by else None,
        approved_by=approved_by.id,
        approved_at=now,
        public_key=public_hex(key),
    )
    rec.signature = sign(key, canonical_deletion(rec))
    session.add(rec)
    session.flush()

    from db.reports.certificate import write_certificate

    path = certificate_dir / f"deletion-{rec.id:05d}-{log_name}-{plan.from_seq}-{plan.to_seq}.pdf"
    write_certificate(
        path,
        rec,
        site_name=site_name,
        zone=zone,
        requested_by=requested_by.display_name if requested_by else "-",
        approved_by=approved_by.display_name,
    )
    rec.certificate_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    append_audit(
        session,
        AuditLog(
            occurred_at=now,
            operator_id=approved_by.id,
            username=approved_by.username,
            action="retention.purge",
            target_type="deletion_record",
            target_id=str(rec.id),
            after={
                "log": log_name,
                "from_seq": rec.from_seq,
                "to_seq": rec.to_seq,
                "row_count": rec.row_count,
                "first_hash": rec.first_hash,
                "last_hash": rec.last_hash,
                "certificate_sha256": rec.certificate_sha256,
                "certificate": path.name,
            },
        ),
    )
    if before_commit is not None:
        before_commit(rec)
    session.commit()
    log.info("purged %s seq %d..%d (%d rows)", log_name, rec.from_seq, rec.to_seq, rec.row_count)
    return rec
