"""TOTP second factor (RFC 6238, via pyotp) and one-time recovery codes: the pure parts.

- The seed is 160 random bits (base32, RFC 4226's recommended length). It is stored
  encrypted (Fernet) under a key derived (HKDF) from the console's secret key file, so a copy
  of the database alone does not give the seeds away. Losing or replacing that file voids
  every enrolment: operators then sign in with a recovery code and enrol again.
- A code is accepted for the current 30-second step and one step either side (clock drift),
  and only for a step later than the last one accepted: a replayed code is refused.
- Recovery codes: 10 per enrolment, shown once, stored as argon2 hashes, each used once.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.approvals import rows_changed
from db.models import OperatorMfa, RecoveryCode

STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# no 0/O, 1/I/L: codes are copied from paper
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 12  # 12 symbols of 31: 59 bits, far beyond guessing within the throttle
# the codes are long random strings, not passwords: argon2's lighter OWASP profile suffices
_recovery_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class SeedUnreadable(Exception):
    """The stored seed cannot be decrypted (the secret key file was replaced)."""


def _fernet(secret_key: bytes | str) -> Fernet:
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"nyutai totp seed v1").derive(
        raw
    )
    return Fernet(base64.urlsafe_b64encode(key))


def new_seed() -> str:
    return pyotp.random_base32()  # 32 base32 characters = 160 bits


def seal(seed: str, secret_key: bytes | str) -> str:
    return _fernet(secret_key).encrypt(seed.encode()).decode()


def unseal(sealed: str, secret_key: bytes | str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SeedUnreadable("the second-factor seed cannot be read with this key") from None


def step_at(when: datetime) -> int:
    return int(when.timestamp()) // STEP_SECONDS


def matching_step(seed: str, code: str, last_step: int | None, when: datetime) -> int | None:
    """The time step ``code`` belongs to, if it is valid now and newer than ``last_step``."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(seed)
    now_step = step_at(when)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue  # used already, or older than a code already used: a replay
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def is_replay(seed: str, code: str, last_step: int | None, when: datetime) -> bool:
    """The code is right for a step already used (so the refusal can say so)."""
    if last_step is None:
        return False
    return matching_step(seed, code, None, when) is not None and (
        matching_step(seed, code, last_step, when) is None
    )


def accept_step(session: Session, operator_id: int, step: int) -> bool:
    """Record ``step`` as used; False if another request used it (or a later one) first."""
    done = rows_changed(
        session.execute(
            update(OperatorMfa)
            .where(
                OperatorMfa.operator_id == operator_id,
                (OperatorMfa.last_step.is_(None)) | (OperatorMfa.last_step < step),
            )
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        )
    )
    return done == 1


def provisioning_uri(seed: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an inline SVG image (drawn here: no outside service sees the seed)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def enrolment(session: Session, operator_id: int) -> OperatorMfa | None:
    """The operator's confirmed enrolment, or None."""
    row = session.get(OperatorMfa, operator_id)
    return row if row is not None and row.enrolled_at is not None else None


def store_enrolment(
    session: Session,
    operator_id: int,
    seed: str,
    secret_key: bytes | str,
    when: datetime,
    last_step: int | None = None,
) -> None:
    """Save a confirmed enrolment (replacing any earlier one; flushes)."""
    row = session.get(OperatorMfa, operator_id)
    if row is None:
        row = OperatorMfa(operator_id=operator_id, secret_enc="", created_at=when)
        session.add(row)
    row.secret_enc = seal(seed, secret_key)
    row.enrolled_at = when
    row.last_step = last_step
    session.flush()


def remove_enrolment(session: Session, operator_id: int) -> bool:
    """Delete the second factor and the recovery codes; True if there was one."""
    had = session.get(OperatorMfa, operator_id) is not None
    session.execute(delete(OperatorMfa).where(OperatorMfa.operator_id == operator_id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.operator_id == operator_id))
    return had


def _normalise(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def new_recovery_codes(session: Session, operator_id: int, when: datetime) -> list[str]:
    """Replace the operator's recovery codes; returns the new ones (shown once, never stored)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.operator_id == operator_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        session.add(
            RecoveryCode(
                operator_id=operator_id, code_hash=_recovery_hasher.hash(raw), created_at=when
            )
        )
    session.flush()
    return codes


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalise(code)) == RECOVERY_LENGTH


def use_recovery_code(session: Session, operator_id: int, code: str, when: datetime) -> bool:
    """True (and the code is spent) if ``code`` is one of the operator's unused codes."""
    wanted = _normalise(code)
    if len(wanted) != RECOVERY_LENGTH:
        return False
    for row in session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.operator_id == operator_id, RecoveryCode.used_at.is_(None)
        )
    ):
        try:
            ok = _recovery_hasher.verify(row.code_hash, wanted)
        except (VerificationError, InvalidHashError):
            continue
        if ok:
            spent = rows_changed(
                session.execute(
                    update(RecoveryCode)
                    .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                    .values(used_at=when)
                    .execution_options(synchronize_session=False)
                )
            )
            return spent == 1
    return False


def recovery_codes_left(session: Session, operator_id: int) -> int:
    return len(
        session.scalars(
            select(RecoveryCode.id).where(
                RecoveryCode.operator_id == operator_id, RecoveryCode.used_at.is_(None)
            )
        ).all()
    )
