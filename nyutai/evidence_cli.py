"""Evidence commands: verify, report monthly, purge, checkpoint, keys generate, review, retention,
backup.

Registered on the ``nyutai`` group by one import at the bottom of nyutai/cli.py.
Dates given on the command line are calendar dates in the site's zone (``[site] timezone``).
"""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from pathlib import Path

import click
from sqlalchemy.orm import Session, sessionmaker

from db.models import Operator
from domain.config import SiteConfig
from nyutai.cli import _load, config_option, main


def _factory(cfg: SiteConfig) -> sessionmaker[Session]:
    from db.engine import make_engine, make_session_factory

    return make_session_factory(make_engine(cfg.database_url))


def _local_midnight(cfg: SiteConfig, value: str, option: str) -> datetime:
    """The start of a YYYY-MM-DD day in the site's zone."""
    try:
        return datetime.combine(date.fromisoformat(value), time(0), cfg.zone)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=option) from None


def _key_path(cfg: SiteConfig) -> Path:
    return cfg.data_path(cfg.evidence.key_file)


# --- verify ----------


@main.command("verify")
@config_option
@click.option("--from", "from_date", help="Check from this date (YYYY-MM-DD, site time).")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    help="Trust this Ed25519 public key (hex); default: the site's trusted key file.",
)
@click.option("--quiet", is_flag=True, help="No progress display (none is shown off a terminal).")
def verify_cmd(
    config_path: Path, from_date: str | None, public_keys: tuple[str, ...], quiet: bool
) -> None:
    """Check the hash chains, checkpoints and tombstones; exit 1 on any finding."""
    from db.checkpoints import trusted_keys
    from db.verify import verify_all
    from nyutai.progress import terminal_progress

    cfg = _load(config_path)
    since = _local_midnight(cfg, from_date, "--from") if from_date else None
    keys: set[str] | None = set(public_keys) or trusted_keys(_key_path(cfg)) or None
    with _factory(cfg)() as s:
        result = verify_all(s, keys, since=since, progress=terminal_progress(quiet))
    for r in result.logs:
        span = f"seq {r.first_seq}..{r.last_seq}" if r.rows_checked else "no rows"
        click.echo(
            f"{r.log}: {r.rows_checked} rows ({span}), {r.checkpoints_checked} checkpoints, "
            f"{r.tombstones_checked} tombstones: {'OK' if r.ok else 'FAILED'}"
        )
        if r.head_hash:
            click.echo(f"  head hash {r.head_hash}")
        for w in r.warnings:
            click.echo(f"  warning: {w}")
        for f in r.findings:
            click.echo(f"  {f}")
    for k in sorted(keys or ()):
        click.echo(f"trusted public key: {k}")
    if not result.ok:
        first = result.first
        click.echo(f"FIRST FAILURE: {first}", err=True)
        sys.exit(1)


# --- checkpoint and keys ----------


@main.command("checkpoint")
@config_option
@click.option("--force", is_flag=True, help="Sign even if today's checkpoint exists.")
def checkpoint_cmd(config_path: Path, force: bool) -> None:
    """Sign the head of each log now."""
    from db.checkpoints import SigningKeyError, create_checkpoints, load_key

    cfg = _load(config_path)
    try:
        key = load_key(_key_path(cfg))
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    with _factory(cfg).begin() as s:
        made = create_checkpoints(s, key, zone=cfg.zone, daily=not force)
        for cp in made:
            click.echo(f"{cp.log}: seq {cp.seq} hash {cp.hash}")
    if not made:
        click.echo("nothing to sign (empty logs, or already signed today)")


@main.group("keys")
def keys_group() -> None:
    """The checkpoint signing key."""


@keys_group.command("generate")
@config_option
@click.option("--force", is_flag=True, help="Replace an existing key (old checkpoints stay valid).")
def keys_generate(config_path: Path, force: bool) -> None:
    """Create the Ed25519 checkpoint key (0600) in the data directory; print its public key."""
    from db.checkpoints import SigningKeyError, generate_key

    cfg = _load(config_path)
    try:
        pub = generate_key(_key_path(cfg), force=force)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"public key: {pub}")
    click.echo("keep a copy of this public key outside the system, for auditors")


# --- backups ----------


@main.command("backup")
@config_option
def backup_cmd(config_path: Path) -> None:
    """Back up the SQLite database now, as the nightly job does (same folder and rotation)."""
    from controller.jobs import backup_sqlite
    from db.types import utcnow

    cfg = _load(config_path)
    path = backup_sqlite(
        cfg.database_url,
        cfg.data_path(cfg.evidence.backup_dir),
        cfg.evidence.backups_keep,
        utcnow(),
        cfg.zone,
    )
    if path is None:
        raise click.ClickException("only a file SQLite database is backed up here (use pg_dump)")
    click.echo(f"wrote {path}")


# --- reports ----------


@main.group("report")
def report_group() -> None:
    """Reports for managers and the city."""


@report_group.command("monthly")
@config_option
@click.option("--month", required=True, help="YYYY-MM (the site's zone).")
@click.option("--area", "areas", multiple=True, help="Area code (repeatable); default all.")
@click.option(
    "--controller",
    "controllers",
    multiple=True,
    help="Controller id (repeatable): only the records it wrote; default all controllers.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory; default the data directory's report folder.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["csv", "pdf"]),
    multiple=True,
    default=("csv", "pdf"),
    show_default=True,
)
@click.option("--quiet", is_flag=True, help="No progress display (none is shown off a terminal).")
def report_monthly(
    config_path: Path,
    month: str,
    areas: tuple[str, ...],
    controllers: tuple[str, ...],
    out_dir: Path | None,
    formats: tuple[str, ...],
    quiet: bool,
) -> None:
    """The monthly handling-status report (CSV for Excel, PDF)."""
    from db.checkpoints import load_key, public_hex
    from db.reports.fonts import FontMissingError
    from db.reports.monthly import ReportError, build_monthly_report
    from db.reports.monthly_csv import write_monthly_csv
    from db.reports.monthly_pdf import write_monthly_pdf
    from nyutai.progress import step_progress

    cfg = _load(config_path)
    keys = [public_hex(load_key(_key_path(cfg)))] if _key_path(cfg).exists() else []
    out = out_dir or cfg.data_path(cfg.evidence.report_dir) / month
    suffix = "".join("-" + part for part in (*areas, *sorted(set(controllers))))
    bar = step_progress("monthly report", quiet)
    with _factory(cfg)() as s:
        try:
            report = build_monthly_report(
                s,
                month,
                zone=cfg.zone,
                area_codes=list(areas) or None,
                site_name=cfg.site.name,
                public_keys=keys,
                controllers=list(controllers) or None,
                progress=bar,
            )
            s.commit()  # the occupancy snapshots it stored: the next month starts from them
        except ReportError as exc:
            if bar is not None:
                bar.stream.write("\n")  # the error on a line of its own
            raise click.ClickException(str(exc)) from None
    if bar is not None:
        bar.finish()
    if "csv" in formats:
        p = out / f"monthly-{month}{suffix}.csv"
        write_monthly_csv(report, p)
        click.echo(f"wrote {p}")
    if "pdf" in formats:
        p = out / f"monthly-{month}{suffix}.pdf"
        try:
            write_monthly_pdf(report, p)
        except FontMissingError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {p}")


# --- retention and purge ----------


@main.group("retention")
def retention_group() -> None:
    """Contract end date and retention period."""


@retention_group.command("show")
@config_option
def retention_show(config_path: Path) -> None:
    from db.retention import retention_end
    from db.settings import CONTRACT_END, RETENTION_YEARS, SettingError, stored_value

    cfg = _load(config_path)
    with _factory(cfg)() as s:
        click.echo(f"contract_end: {stored_value(s, CONTRACT_END)}")
        click.echo(f"retention_years: {stored_value(s, RETENTION_YEARS)}")
        try:
            end = retention_end(s)
        except SettingError as exc:
            raise click.ClickException(
                f"{exc} (nothing can be purged until it is set again)"
            ) from None
        click.echo(f"purge possible from: {end if end else 'never (contract end not set)'}")


@retention_group.command("set")
@config_option
@click.option("--contract-end", help="YYYY-MM-DD")
@click.option("--years", type=int, help="Years kept after the contract end (at least 1).")
@click.option(
    "--approval",
    "approval_id",
    type=int,
    required=True,
    help="The approval recorded in the console (Approvals page) for exactly these values.",
)
def retention_set(
    config_path: Path, contract_end: str | None, years: int | None, approval_id: int
) -> None:
    """Set the contract end and/or retention, as approved by two people in the console."""
    from db.approvals import ApprovalError, mark_done, take_for_cli
    from db.eventlog import append_audit
    from db.models import ApprovalKind, AuditLog
    from db.settings import (
        CONTRACT_END,
        RETENTION_YEARS,
        SettingError,
        normalise_setting,
        set_setting,
        stored_value,
    )
    from db.types import utcnow

    wanted: dict[str, object] = {}
    if contract_end is not None:
        wanted[CONTRACT_END] = contract_end
    if years is not None:
        wanted[RETENTION_YEARS] = years
    if not wanted:
        raise click.UsageError("give --contract-end and/or --years")
    for key, value in list(wanted.items()):  # the same rules as the console, checked first
        try:
            wanted[key] = normalise_setting(key, value)
        except SettingError as exc:
            raise click.ClickException(f"{exc.code}: {exc}") from None
    cfg = _load(config_path)
    with _factory(cfg).begin() as s:
        try:
            req = take_for_cli(s, approval_id, ApprovalKind.RETENTION, wanted)
        except ApprovalError as exc:
            raise click.ClickException(f"refused ({exc.code}): {exc}") from None
        people = _people(s, req.requested_by, req.decided_by)
        for key, value in wanted.items():
            before = stored_value(s, key)
            try:
                value = set_setting(s, key, value)
            except SettingError as exc:
                raise click.ClickException(f"{exc.code}: {exc}") from None
            append_audit(
                s,
                AuditLog(
                    occurred_at=utcnow(),
                    username="(command line)",
                    action="setting.update",
                    target_type="setting",
                    target_id=key,
                    before={"value": before},
                    after={"value": value, "approval": req.id, **people},
                ),
            )
            click.echo(f"{key}: {before} -> {value}")
        mark_done(s, req, {"changed": wanted})


def _people(session: Session, requested_by: int | None, approved_by: int | None) -> dict[str, str]:
    """Both people of an approval by user name, for the audit row of what the CLI did."""
    out = {}
    for label, op_id in (("requested_by", requested_by), ("approved_by", approved_by)):
        op = session.get(Operator, op_id) if op_id is not None else None
        out[label] = op.username if op else "-"
    return out


@main.command("purge")
@config_option
@click.option(
    "--log",
    "log_name",
    required=True,
    help="audit, events (the default controller's chain) or events@ID (controller ID's).",
)
@click.option("--before", required=True, help="Purge records before this date (YYYY-MM-DD).")
@click.option(
    "--approval",
    "approval_id",
    type=int,
    help="The purge approved by two people in the console (not needed for --dry-run).",
)
@click.option("--dry-run", is_flag=True, help="Only show what would be purged.")
@click.option("--quiet", is_flag=True, help="No progress display (none is shown off a terminal).")
def purge_cmd(
    config_path: Path,
    log_name: str,
    before: str,
    approval_id: int | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Purge records past retention: tombstone, deletion record and certificate (PDF).

    Carries out a purge asked for and approved in the console, once: the log and the date
    must be the approved ones, and the approval must be less than a day old."""
    from db.approvals import ApprovalError, mark_done, take_for_cli
    from db.chain import log_model
    from db.checkpoints import SigningKeyError, load_key
    from db.models import ApprovalKind
    from db.retention import PurgeRefused, plan_purge, purge
    from nyutai.progress import terminal_progress

    try:
        log_model(log_name)
    except ValueError:
        raise click.BadParameter(
            f"unknown_log: {log_name!r} (audit, events or events@CONTROLLER)", param_hint="--log"
        ) from None
    cfg = _load(config_path)
    cutoff = _local_midnight(cfg, before, "--before")
    with _factory(cfg)() as s:
        if dry_run:
            plan = plan_purge(s, log_name, cutoff)
            click.echo(
                f"would purge {plan.row_count} rows, seq {plan.from_seq}..{plan.to_seq}"
                if plan
                else "nothing to purge"
            )
            return
        if approval_id is None:
            raise click.ClickException(
                "refused (approval_required): a purge needs --approval ID, recorded by two "
                "people in the console (Approvals page)"
            )
        try:
            req = take_for_cli(
                s, approval_id, ApprovalKind.PURGE, {"log": log_name, "before": before}
            )
        except ApprovalError as exc:
            raise click.ClickException(f"purge refused ({exc.code}): {exc}") from None
        try:
            key = load_key(_key_path(cfg))
        except SigningKeyError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            rec = purge(
                s,
                log_name,
                cutoff,
                requested_by=s.get(Operator, req.requested_by),
                approved_by=s.get(Operator, req.decided_by) if req.decided_by else None,
                key=key,
                certificate_dir=cfg.data_path(cfg.evidence.certificate_dir),
                zone=cfg.zone,
                site_name=cfg.site.name,
                before_commit=lambda rec: mark_done(s, req, {"deletion_record": rec.id}),
                progress=terminal_progress(quiet),
            )
        except PurgeRefused as exc:
            raise click.ClickException(f"purge refused ({exc.code}): {exc}") from None
        except ApprovalError as exc:  # used by another run at the same moment
            s.rollback()
            raise click.ClickException(f"purge refused ({exc.code}): {exc}") from None
        click.echo(
            f"purged {rec.row_count} rows of {rec.log}, seq {rec.from_seq}..{rec.to_seq}; "
            f"deletion record {rec.id}, certificate sha256 {rec.certificate_sha256}"
        )


# --- access review ----------


@main.group("review")
def review_group() -> None:
    """Access review (section 9)."""


@review_group.command("list")
@config_option
def review_list(config_path: Path) -> None:
    """Authorizations unused for 90 days, trainings expiring, designations without access."""
    from db.review import review_items

    cfg = _load(config_path)
    with _factory(cfg)() as s:
        items = review_items(s, zone=cfg.zone)
    for i in items:
        auth = f"authorization {i.authorization_id}" if i.authorization_id else "designation"
        click.echo(f"{i.finding}\t{auth}\tperson {i.person_id} {i.person}\t{i.area}\t{i.detail}")
    if not items:
        click.echo("nothing to review")


@review_group.command("decide")
@config_option
@click.option(
    "--approval",
    "approval_id",
    type=int,
    required=True,
    help="The decision asked for and approved by two managers in the console.",
)
@click.option("--authorization", "authorization_id", type=int)
@click.option("--person", "person_id", type=int, help="For a designation without authorization.")
@click.option("--finding", default="manual")
@click.option("--decision", type=click.Choice(["keep", "revoke"]), required=True)
def review_decide(
    config_path: Path,
    approval_id: int,
    authorization_id: int | None,
    person_id: int | None,
    finding: str,
    decision: str,
) -> None:
    """Record an approved keep/revoke decision (audited; the requester is the decider and
    the approval's reason is the note)."""
    from db.approvals import ApprovalError, mark_done, take_for_cli
    from db.models import ApprovalKind
    from db.review import ReviewError, record_designation_review, record_review

    if (authorization_id is None) == (person_id is None):
        raise click.UsageError("give exactly one of --authorization and --person")
    wanted: dict[str, object] = {"decision": decision}
    if authorization_id is not None:
        wanted["authorization_id"] = authorization_id
    else:
        wanted["person_id"] = person_id
    cfg = _load(config_path)
    with _factory(cfg).begin() as s:
        try:
            req = take_for_cli(s, approval_id, ApprovalKind.REVIEW, wanted)
        except ApprovalError as exc:
            raise click.ClickException(f"refused ({exc.code}): {exc}") from None
        op = s.get(Operator, req.requested_by)
        assert op is not None
        note = f"{req.reason or ''} (approval {req.id})".strip()
        try:
            if authorization_id is not None:
                record_review(s, op, authorization_id, finding, decision, note)
            else:
                assert person_id is not None
                record_designation_review(s, op, person_id, decision, note)
        except ReviewError as exc:
            raise click.ClickException(f"{exc.code}: {exc}") from None
        mark_done(s, req, {"decision": decision})
    click.echo(f"recorded: {decision}")
