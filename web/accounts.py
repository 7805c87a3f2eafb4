"""Operator accounts: password hashing (argon2), strength rule, creation."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import AuditLog, Operator, Role
from db.types import utcnow

MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs as long as a hit.
_DUMMY_HASH = _hasher.hash("nyutai-dummy-password-for-timing")


class AccountError(ValueError):
    """An operator account could not be created or changed; the message says why."""


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is too weak, or None. Length is what matters most (NIST 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("at least %(n)s characters are needed", n=MIN_PASSWORD_LENGTH)
    if len(set(password)) < 4:
        return _("too few different characters")
    if username and username.lower() in password.lower():
        return _("the password must not contain the user name")
    return None


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
) -> Operator:
    """Create an operator (flushes; the caller commits). Weak passwords are refused."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError(_("the user name must be 1 to 64 characters"))
    try:
        role = Role(role).value
    except ValueError:
        raise AccountError(f"unknown role {role!r} (one of: {', '.join(Role)})") from None
    problem = password_problem(password, username)
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


def create_api_token(session: Session, operator: Operator, label: str) -> tuple[int, str]:
    """A new API token for ``operator``: (row id, the token). Only its hash is stored, so
    the token is shown once (flushes; the caller commits)."""
    from db.models import ApiToken
    from web.auth import new_token, token_hash

    token = new_token()
    row = ApiToken(operator_id=operator.id, token_hash=token_hash(token), label=label[:100])
    session.add(row)
    session.flush()
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            action="api_token.create",
            target_type="api_token",
            target_id=str(row.id),
            after={"operator": operator.username, "label": label[:100]},
        ),
    )
    return row.id, token
