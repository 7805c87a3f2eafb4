"""Retention refusals and purges that leave a verifiable chain and a certificate."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from db.checkpoints import create_checkpoints, generate_key, load_key, trusted_keys
from db.eventlog import append_event
from db.models import AuditLog, DeletionRecord, Event, Operator, Role
from db.retention import PurgeRefused, purge
from db.settings import CONTRACT_END, RETENTION_YEARS, set_setting
from db.verify import BAD_TOMBSTONE, DELETED, verify_all, verify_log
from tests.evidence.helpers import T0, add_audits, add_events

CONTRACT_END_DAY = "2026-03-31"
AFTER_RETENTION = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)  # 09:00 JST 2027-04-01
LAST_DAY_OF_RETENTION = datetime(2027, 3, 31, 12, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    p = tmp_path / "keys" / "checkpoint.key"
    generate_key(p)
    return p


@pytest.fixture
def ops(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as s:
        made = {}
        for role in (Role.MANAGER, Role.GUARD, Role.ADMINISTRATOR):
            op = Operator(
                username=str(role), display_name=f"{role} 担当", role=role, password_hash="x"
            )
            s.add(op)
            s.flush()
            made[str(role)] = op.id
        set_setting(s, CONTRACT_END, CONTRACT_END_DAY)
        s.commit()
        return made


def _purge(s: Session, key_path: Path, tmp_path: Path, ops, *, log="events", before=None,
           approver="manager", now=AFTER_RETENTION, zone=TOKYO) -> DeletionRecord:  # fmt: skip
    return purge(
        s,
        log,
        before or T0 + timedelta(minutes=10),
        requested_by=s.get(Operator, ops["guard"]),
        approved_by=s.get(Operator, ops[approver]),
        key=load_key(key_path),
        certificate_dir=tmp_path / "certs",
        zone=zone,
        now=now,
    )


def _refusals(s: Session) -> list[str]:
    rows = s.scalars(select(AuditLog).where(AuditLog.action == "retention.purge_refused"))
    return [r.after["reason"] for r in rows]  # type: ignore[index]


def _count(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(Event)) or 0


def test_nothing_purged_inside_retention(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 20)
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops, now=LAST_DAY_OF_RETENTION)
        assert exc.value.code == "inside_retention"
    with session_factory() as s:
        assert _count(s) == 20
        assert _refusals(s) == ["inside_retention"]


def test_longer_retention_setting_is_honoured(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        set_setting(s, RETENTION_YEARS, 3)
        s.commit()
        with pytest.raises(PurgeRefused, match="2029-03-31"):
            _purge(s, key_path, tmp_path, ops)
    with session_factory() as s:
        assert _count(s) == 5


def test_no_contract_end_means_no_purge(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        s.execute(text("DELETE FROM site_settings"))
        s.commit()
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops)
        assert exc.value.code == "retention_unknown"
    with session_factory() as s:
        assert _count(s) == 5


def test_range_past_contract_end_refused(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops, before=datetime(2026, 4, 2, tzinfo=UTC))
        assert exc.value.code == "inside_retention"


@pytest.mark.parametrize("approver", ["guard", "administrator"])
def test_purge_needs_a_manager(session_factory, key_path, tmp_path, ops, approver) -> None:
    add_events(session_factory, 5)
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops, approver=approver)
        assert exc.value.code == "approval_required"
    with session_factory() as s:
        assert _count(s) == 5


def test_broken_chain_is_not_purged(session_factory, engine, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 20)
    with engine.begin() as c:
        c.execute(text("UPDATE events SET raw_card_id='00' WHERE seq=3"))
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops)
        assert exc.value.code == "chain_broken"
    with session_factory() as s:
        assert _count(s) == 20


def test_purge_leaves_tombstone_and_certificate(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 20)
    add_audits(session_factory, 3)
    with session_factory() as s:
        create_checkpoints(s, load_key(key_path), zone=TOKYO, now=T0 + timedelta(hours=1))
        s.commit()
        first_hash = s.scalar(select(Event.hash).where(Event.seq == 1))
        last_hash = s.scalar(select(Event.hash).where(Event.seq == 10))
        rec = _purge(s, key_path, tmp_path, ops)  # rows at minutes 0..9
    assert (rec.from_seq, rec.to_seq, rec.row_count) == (1, 10, 10)
    assert (rec.first_hash, rec.last_hash) == (first_hash, last_hash)
    certs = list((tmp_path / "certs").glob("*.pdf"))
    assert len(certs) == 1
    assert hashlib.sha256(certs[0].read_bytes()).hexdigest() == rec.certificate_sha256
    with session_factory() as s:
        assert s.scalars(select(Event.seq).order_by(Event.seq)).all() == list(range(11, 21))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "retention.purge")).one()
        assert audit.after["row_count"] == 10  # type: ignore[index]
        assert verify_all(s, trusted_keys(key_path)).ok
        append_event(  # the chain goes on after the purge
            s,
            Event(
                occurred_at=T0 + timedelta(days=1),
                kind="presentation",
                decision="granted",
                reason="granted",
            ),
        )
        s.commit()
        # a second purge continues from the first tombstone
        rec2 = _purge(s, key_path, tmp_path, ops, before=T0 + timedelta(minutes=15))
        assert (rec2.from_seq, rec2.to_seq) == (11, 15)
        assert verify_all(s, trusted_keys(key_path)).ok


def test_purge_everything_then_append(session_factory, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 4)
    with session_factory() as s:
        _purge(s, key_path, tmp_path, ops, before=datetime(2026, 3, 30, tzinfo=UTC))
        append_event(
            s, Event(occurred_at=T0, kind="presentation", decision="granted", reason="granted")
        )
        s.commit()
        assert s.scalar(select(Event.seq)) == 5
        assert verify_log(s, "events", trusted_keys(key_path)).ok


def test_tombstone_tampering_is_found(session_factory, engine, key_path, tmp_path, ops) -> None:
    add_events(session_factory, 20)
    with session_factory() as s:
        _purge(s, key_path, tmp_path, ops)
    with engine.begin() as c:  # widen the tombstone to hide more deleted rows
        c.execute(text("DELETE FROM events WHERE seq <= 12"))
        c.execute(text("UPDATE deletion_records SET to_seq=12"))
    with session_factory() as s:
        f = verify_log(s, "events", trusted_keys(key_path)).first
        assert f is not None and f.kind == BAD_TOMBSTONE
    with engine.begin() as c:  # or remove the tombstone altogether
        c.execute(text("DELETE FROM deletion_records"))
    with session_factory() as s:
        f = verify_log(s, "events", trusted_keys(key_path)).first
        assert f is not None and (f.kind, f.seq) == (DELETED, 1)


def test_audit_log_purge(session_factory, key_path, tmp_path, ops) -> None:
    add_audits(session_factory, 10)
    with session_factory() as s:
        rec = _purge(s, key_path, tmp_path, ops, log="audit", before=T0 + timedelta(minutes=5))
        assert (rec.from_seq, rec.to_seq) == (1, 5)
        assert verify_log(s, "audit", trusted_keys(key_path)).ok


def test_no_font_no_purge(session_factory, key_path, tmp_path, ops, monkeypatch) -> None:
    add_events(session_factory, 5)
    monkeypatch.setenv("NYUTAI_PDF_FONT", str(tmp_path / "missing.ttf"))
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops)
        assert exc.value.code == "certificate_unavailable" and "missing.ttf" in str(exc.value)
    with session_factory() as s:
        assert _count(s) == 5


def test_retention_days_and_the_certificate_follow_the_site_zone(
    session_factory, key_path, tmp_path, ops
) -> None:
    """Retention runs out on the site's calendar: 2027-04-01 00:00 UTC is already 1 April in
    Tokyo but still 31 March in New York. The certificate prints New York times, named."""
    new_york = ZoneInfo("America/New_York")
    add_events(session_factory, 20)
    with session_factory() as s:
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops, zone=new_york)
        assert exc.value.code == "inside_retention"
        # the contract's last day ends at midnight New York time (04:00 UTC, EDT)
        with pytest.raises(PurgeRefused) as exc:
            _purge(s, key_path, tmp_path, ops, before=datetime(2026, 4, 1, 4, 1, tzinfo=UTC),
                   now=AFTER_RETENTION + timedelta(hours=5), zone=new_york)  # fmt: skip
        assert exc.value.code == "inside_retention"
        rec = _purge(s, key_path, tmp_path, ops, now=AFTER_RETENTION + timedelta(hours=5),
                     zone=new_york)  # fmt: skip
    assert rec.row_count == 10
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    (cert,) = (tmp_path / "certs").glob("*.pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(cert), "-"], capture_output=True, text=True, check=True
    ).stdout
    # the rows were written from 2026-03-01 00:00 UTC: 28 February 19:00 EST
    assert "2026-02-28 19:00:00 EST" in text
    assert "2027-04-01 01:00:00 EDT" in text  # approved at 05:00 UTC, after the DST change
    assert "JST" not in text
