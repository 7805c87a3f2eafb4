"""Operator accounts: password hashing (argon2), strength rule, creation."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import AuditLog, Operator, Role
from db.types import utcnow
from domain.passwords import MIN_PASSWORD_LENGTH, password_problem_code

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs as long as a hit.
_DUMMY_HASH = _hasher.hash("nyutai-dummy-password-for-timing")


class AccountError(ValueError):
    """An operator account could not be created or changed; the message says why."""


def password_problem(password: str, username: str = "", site_name: str | None = None) -> str | None:
    """Why ``password`` is too weak (a sentence), or None: domain.passwords has the rules.

    ``site_name`` defaults to the running console's ``[site] name``.
    """
    if site_name is None:
        site_name = _site_name()
    code = password_problem_code(password, username, site_name)
    if code is None:
        return None
    return {
        "password_short": _("at least %(n)s characters are needed", n=MIN_PASSWORD_LENGTH),
        "password_few_characters": _("too few different characters"),
        "password_contains_name": _("the password must not contain the user name"),
        "password_contains_site": _("the password must not contain the site's name"),
        "password_common": _("this password is one of the most commonly used ones"),
        "password_pattern": _("this is a keyboard pattern, a run or a repetition"),
    }.get(code, code)


def _site_name() -> str:
    from flask import current_app, has_app_context

    cfg = current_app.config.get("NYUTAI_SITE") if has_app_context() else None
    return cfg.site.name if cfg is not None else ""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def create_operator(
    session: Session,
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    *,
    actor: Operator | None = None,
    site_name: str | None = None,
) -> Operator:
    """Create an operator (flushes; the caller commits). Weak passwords are refused."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError(_("the user name must be 1 to 64 characters"))
    try:
        role = Role(role).value
    except ValueError:
        raise AccountError(f"unknown role {role!r} (one of: {', '.join(Role)})") from None
    problem = password_problem(password, username, site_name)
    if problem:
        raise AccountError(_("weak password: %(problem)s", problem=problem))
    if session.scalar(select(Operator.id).where(Operator.username == username)) is not None:
        raise AccountError(_("the user name %(name)s is taken", name=repr(username)))
    op = Operator(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
    )
    session.add(op)
    session.flush()
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            operator_id=actor.id if actor else None,
            username=actor.username if actor else None,
            action="operator.create",
            target_type="operator",
            target_id=str(op.id),
            after={"username": username, "role": role, "display_name": op.display_name},
        ),
    )
    return op


DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366


def create_api_token(
    session: Session,
    operator: Operator,
    label: str,
    *,
    valid_days: int = DEFAULT_TOKEN_DAYS,
    actor: Operator | None = None,
    actor_name: str | None = None,
) -> tuple[int, str]:
    """A new API token for ``operator``: (row id, the token). Only its hash is stored, so
    the token is shown once. It expires after ``valid_days``; the audit row names who made
    it (``actor``, or ``actor_name`` such as ``cli:root``). Flushes; the caller commits."""
    from db.models import ApiToken
    from web.auth import new_token, token_hash

    if not 1 <= valid_days <= MAX_TOKEN_DAYS:
        raise AccountError(f"a token is valid for 1 to {MAX_TOKEN_DAYS} days")
    token = new_token()
    now = utcnow()
    row = ApiToken(
        operator_id=operator.id,
        token_hash=token_hash(token),
        label=label[:100],
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    session.add(row)
    session.flush()
    append_audit(
        session,
        AuditLog(
            occurred_at=now,
            operator_id=actor.id if actor else None,
            username=actor.username if actor else actor_name,
            action="api_token.create",
            target_type="api_token",
            target_id=str(row.id),
            after={
                "operator": operator.username,
                "label": label[:100],
                "expires_at": row.expires_at.isoformat(),
            },
        ),
    )
    return row.id, token


def revoke_api_token(
    session: Session,
    token_id: int,
    *,
    actor: Operator | None = None,
    actor_name: str | None = None,
    reason: str | None = None,
) -> bool:
    """Revoke one token (audited with its owner, the actor and the reason); False if there
    is no such token. Flushes; the caller commits."""
    from db.models import ApiToken

    row = session.get(ApiToken, token_id)
    if row is None:
        return False
    owner = session.get(Operator, row.operator_id)
    was = row.revoked_at
    row.revoked_at = was or utcnow()
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            operator_id=actor.id if actor else None,
            username=actor.username if actor else actor_name,
            action="api_token.revoke",
            target_type="api_token",
            target_id=str(token_id),
            before={"revoked_at": was.isoformat() if was else None},
            after={
                "operator": owner.username if owner else None,
                "label": row.label,
                **({"reason": reason} if reason else {}),
            },
        ),
    )
    return True


def revoke_operator_tokens(session: Session, operator_id: int) -> int:
    """End every live token of an operator (their password was reset or changed): the
    number revoked. The caller's audit row records it. Flushes; the caller commits."""
    from sqlalchemy import update

    from db.models import ApiToken

    result = session.execute(
        update(ApiToken)
        .where(ApiToken.operator_id == operator_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
