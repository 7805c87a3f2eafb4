"""``nyutai operators ...`` and ``nyutai api-token ...``: accounts from the command line.

The first administrator is created here; there is no default password anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory, session_scope
from db.eventlog import append_audit
from db.models import ApiToken, AuditLog, Operator, Role
from db.types import utcnow
from domain.config import ConfigError, SiteConfig, load_config

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The site file (TOML).",
)


def _config(config_path: Path) -> SiteConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def _factory(config_path: Path) -> sessionmaker[Session]:
    return make_session_factory(make_engine(_config(config_path).database_url))


@click.group()
def operators() -> None:
    """Web console operators (administrator, manager, guard, auditor)."""


@operators.command("create")
@config_option
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def operators_create(
    config_path: Path, username: str, role: str, display_name: str | None, password_stdin: bool
) -> None:
    """Create an operator; the password is prompted for twice (or read from stdin)."""
    from web.accounts import AccountError, create_operator, password_problem

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    site_name = _config(config_path).site.name
    problem = password_problem(password, username, site_name)
    if problem:
        raise click.ClickException(f"weak password: {problem}")
    factory = _factory(config_path)
    try:
        with session_scope(factory) as session:
            if role == Role.ADMINISTRATOR and _has_administrator(session):
                # four eyes: later administrators are asked for and approved in the console
                raise click.ClickException(
                    "an active administrator exists: create further administrators in the "
                    "console, where a second person approves them"
                )
            op = create_operator(
                session, username, role, password, display_name, site_name=site_name
            )
            op_id = op.id
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"operator {username!r} ({role}) created with id {op_id}")


def _has_administrator(session: Session) -> bool:
    return (
        session.scalar(
            select(Operator.id).where(
                Operator.role == Role.ADMINISTRATOR, Operator.active.is_(True)
            )
        )
        is not None
    )


@operators.command("reset-mfa")
@config_option
@click.option("--username", required=True)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
def operators_reset_mfa(config_path: Path, username: str, reason: str) -> None:
    """Break glass: remove an operator's second factor when nobody can approve it in the
    console (the only administrator lost their phone and recovery codes). Audited; the
    operator enrols again at the next sign-in."""
    from db.models import OperatorMfa, RecoveryCode, WebSession
    from web.accounts import revoke_operator_tokens

    with session_scope(_factory(config_path)) as session:
        op = session.scalar(select(Operator).where(Operator.username == username))
        if op is None:
            raise click.ClickException(f"no operator {username!r}")
        had = session.get(OperatorMfa, op.id) is not None
        session.query(OperatorMfa).filter(OperatorMfa.operator_id == op.id).delete()
        session.query(RecoveryCode).filter(RecoveryCode.operator_id == op.id).delete()
        session.query(WebSession).filter(
            WebSession.operator_id == op.id, WebSession.revoked_at.is_(None)
        ).update({"revoked_at": utcnow()})
        tokens = revoke_operator_tokens(session, op.id)  # as with a password reset
        append_audit(
            session,
            AuditLog(
                occurred_at=utcnow(),
                username="(command line)",
                action="mfa.reset",
                target_type="operator",
                target_id=str(op.id),
                before={"method": "totp" if had else None},
                after={
                    "method": None,
                    "reason": reason[:1000],
                    "channel": "command line",
                    "api_tokens_revoked": tokens,
                },
            ),
        )
    click.echo(f"second factor of {username!r} removed; they enrol again at the next sign-in")


@operators.command("list")
@config_option
def operators_list(config_path: Path) -> None:
    """List operators (never their passwords)."""
    with session_scope(_factory(config_path)) as session:
        for op in session.scalars(select(Operator).order_by(Operator.username)):
            state = "active" if op.active else "inactive"
            click.echo(f"{op.id}\t{op.username}\t{op.role}\t{state}\t{op.display_name}")


@click.group("api-token")
def api_token() -> None:
    """API tokens for integrations (read-only JSON API)."""


def _cli_actor() -> str:
    """Who ran the command, for the audit row: the command line has no operator sign-in, so
    the operating-system account that holds the site file and the database stands in."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no passwd entry (a container): still say it was the CLI
        return "cli:unknown"


@api_token.command("create")
@config_option
@click.option("--username", required=True, help="The operator the token acts as.")
@click.option("--label", required=True, help="What the token is for.")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=90,
    show_default=True,
    help="Days until the token expires.",
)
def api_token_create(config_path: Path, username: str, label: str, days: int) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    from web.accounts import create_api_token
    from web.mfa import required_for
    from web.totp import enrolment

    with session_scope(_factory(config_path)) as session:
        op = session.scalar(select(Operator).where(Operator.username == username))
        if op is None or not op.active:
            raise click.ClickException(f"no active operator {username!r}")
        if required_for(op.role) and enrolment(session, op.id) is None:
            # in the console this operator can do nothing before enrolling a second factor
            # (and a second-factor reset revokes their tokens): no token stands in for it
            raise click.ClickException(
                f"{username!r} is a {op.role} without a second factor: they sign in to the"
                " console and enrol one first"
            )
        _id, token = create_api_token(session, op, label, valid_days=days, actor_name=_cli_actor())
    click.echo(token)


@api_token.command("list")
@config_option
def api_token_list(config_path: Path) -> None:
    """Every token: id, owner, label, created, last used, expiry, state (never the token)."""
    now = utcnow()
    with session_scope(_factory(config_path)) as session:
        rows = session.execute(
            select(ApiToken, Operator.username)
            .join(Operator, Operator.id == ApiToken.operator_id)
            .order_by(ApiToken.id)
        ).all()
        for tok, owner in rows:
            if tok.revoked_at is not None:
                state = f"revoked {tok.revoked_at:%Y-%m-%d %H:%M}Z"
            elif tok.expires_at <= now:
                state = "expired"
            else:
                state = "active"
            used = f"{tok.last_used_at:%Y-%m-%d %H:%M}Z" if tok.last_used_at else "never"
            click.echo(
                f"{tok.id}\t{owner}\t{tok.label}\tcreated {tok.created_at:%Y-%m-%d %H:%M}Z\t"
                f"last used {used}\texpires {tok.expires_at:%Y-%m-%d %H:%M}Z\t{state}"
            )


@api_token.command("revoke")
@config_option
@click.argument("token_id", type=int)
def api_token_revoke(config_path: Path, token_id: int) -> None:
    """Revoke a token by its id."""
    from web.accounts import revoke_api_token

    with session_scope(_factory(config_path)) as session:
        if not revoke_api_token(session, token_id, actor_name=_cli_actor()):
            raise click.ClickException(f"no token {token_id}")
    click.echo(f"token {token_id} revoked")
