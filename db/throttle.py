"""Sign-in throttling shared by every web process: a growing delay, never a lock.

The state is in the ``login_throttle`` table, so several web processes (and the PostgreSQL
multi-site setup) see the same counts. Three keys count failed passwords:

- ``pair:ADDRESS|NAME``: one client guessing one name. 5 free failures, then a delay of
  30 s, doubling with every further failure, at most 15 minutes. Only that client waits.
- ``addr:ADDRESS``: one client trying many names (spraying, or listing user names). 20 free
  failures, then the same growing delay for that client.
- ``name:NAME``: one name from many clients (a distributed guesser). 20 free failures, then
  the growing delay, except for clients at an address the operator signed in from during the
  last 30 days (the caller says so with ``known_address``). So an outsider can slow down
  guessing of the administrator's password but cannot keep the administrator out.

While a key is blocked an attempt is refused without looking at the password (no argon2 work
for the attacker's requests) and does not count as a failure, so hammering does not extend
the delay. Counts start again after an hour without failures. Keys are the typed name, known
or not, so an unknown name is answered exactly like a real one.

The second factor (TOTP and recovery codes at sign-in, and codes at re-authentication) is
counted the same way under its own keys (``scope=CODE``: ``code-pair:``, ``code-addr:``,
``code-name:``), with the same rules and delays. Its own keys, because the right password
ends a client's ``pair`` delay: a guesser who knows the password must not wipe their count
of wrong codes by giving it again.

Audit: the first failure for a name in a 15-minute window is one ``login_failed`` row (the
caller writes it, with the request's address); the rest of the window is counted and written
as one ``login_failed_repeated`` row (failures, refusals, the addresses) when the window has
closed. Refusals because one address is blocked are summed per address
(``login_refused_repeated``, with the names tried). ``flush_due`` writes the summaries of
closed windows; the web calls it on every sign-in and when the audit log is opened.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import AuditLog, LoginThrottle, Operator

log = logging.getLogger(__name__)

ADDR, NAME, PAIR = "addr", "name", "pair"
PASSWORD, CODE = "", "code-"  # scopes: the prefix of their keys
BASE_DELAY = timedelta(seconds=30)
RESET_AFTER = timedelta(hours=1)  # a key's failure count starts again after this long
AUDIT_WINDOW = timedelta(minutes=15)
KNOWN_ADDRESS_DAYS = 30
DETAIL_MAX = 20  # addresses (or names) kept per window: enough to see a pattern
FLUSH_BATCH = 100


@dataclass(frozen=True)
class Rule:
    free: int  # failures before the first delay
    cap: timedelta  # the longest delay


RULES = {
    PAIR: Rule(5, timedelta(minutes=15)),
    ADDR: Rule(20, timedelta(minutes=15)),
    NAME: Rule(20, timedelta(minutes=15)),
}


def _name(name: str) -> str:
    return name.strip()[:64]


def _key(kind: str, addr: str, name: str, scope: str = PASSWORD) -> str:
    if kind == ADDR:
        return f"{scope}addr:{addr}"
    if kind == NAME:
        return f"{scope}name:{_name(name)}"
    return f"{scope}pair:{addr}|{_name(name)}"


def delay_after(kind: str, failures: int) -> timedelta | None:
    """The wait after the ``failures``-th failure on a key of ``kind`` (None: no wait)."""
    rule = RULES[kind]
    if failures < rule.free:
        return None
    # 2 ** n for large n only matters until the cap; keep the exponent small
    return min(rule.cap, BASE_DELAY * 2 ** min(failures - rule.free, 20))


def _locked(session: Session, key: str) -> LoginThrottle:
    """The key's row, created if missing, locked for this transaction.

    The first statement is a write, as in db.eventlog: SQLite takes its write lock (waiting
    up to the busy timeout) before the row is read, PostgreSQL locks the row; so two web
    processes counting the same key never lose a count.
    """
    bump = text("UPDATE login_throttle SET failures = failures WHERE key = :k")
    for _attempt in range(3):
        if session.execute(bump, {"k": key}).rowcount:  # type: ignore[attr-defined]
            row = session.get(LoginThrottle, key, populate_existing=True)
            assert row is not None
            return row
        try:
            with session.begin_nested():
                session.add(LoginThrottle(key=key, failures=0, window_failures=0, window_refused=0))
        except IntegrityError:  # another process created it first: lock theirs
            continue
    raise RuntimeError(f"could not lock throttle row {key!r}")  # pragma: no cover


def _blocked_for(row: LoginThrottle | None, now: datetime) -> int | None:
    if row is None or row.blocked_until is None or row.blocked_until <= now:
        return None
    return max(1, math.ceil((row.blocked_until - now).total_seconds()))


def check(
    session: Session,
    addr: str,
    name: str,
    now: datetime,
    *,
    known_address: bool = False,
    scope: str = PASSWORD,
) -> int | None:
    """Seconds the client must wait before this attempt is looked at, or None to go on.

    A refusal is counted for the audit summary (flushes; the caller commits).
    """
    rows = {
        kind: session.get(LoginThrottle, _key(kind, addr, name, scope), populate_existing=True)
        for kind in (ADDR, PAIR, NAME)
    }
    wait = _blocked_for(rows[ADDR], now)
    if wait is not None:
        _count(session, _key(ADDR, addr, name, scope), now, refused=True, detail=_name(name))
        return wait
    waits = [_blocked_for(rows[PAIR], now)]
    if not known_address:
        waits.append(_blocked_for(rows[NAME], now))
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        _count(session, _key(NAME, addr, name, scope), now, refused=True, detail=addr)
    return wait


def record_failure(
    session: Session, addr: str, name: str, now: datetime, *, scope: str = PASSWORD
) -> bool:
    """Count a wrong password (or unknown name), or in ``scope=CODE`` a wrong code, on all
    three keys and set their delays.

    Returns True when this is the first failure for the name in its audit window: the caller
    then writes its own row (``login_failed``, ``login.code_failed`` ...). Flushes; the caller
    commits.
    """
    for kind in (PAIR, ADDR, NAME):
        row = _locked(session, _key(kind, addr, name, scope))
        if row.last_failure_at is not None and now - row.last_failure_at > RESET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = delay_after(kind, row.failures)
        row.blocked_until = now + delay if delay else None
        if delay:
            log.info("sign-in throttle %s: %d failures, delay %s", kind, row.failures, delay)
    session.flush()
    return _count(session, _key(NAME, addr, name, scope), now, refused=False, detail=addr)


def record_success(session: Session, addr: str, name: str, *, scope: str = PASSWORD) -> None:
    """The right password from this client: its own (address, name) count starts again.

    The name's and the address's counts stay: a guesser who also knows one password must not
    wipe the evidence or the delay of the others.
    """
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _key(PAIR, addr, name, scope)))


def forget_name(session: Session, name: str) -> None:
    """An administrator reset this operator's password: their delays end (the audit windows
    of the name stay, so nothing of what happened is lost)."""
    name = _name(name)
    for scope in (PASSWORD, CODE):
        session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.key.startswith(f"{scope}pair:", autoescape=True),
                LoginThrottle.key.endswith("|" + name, autoescape=True),
                LoginThrottle.window_started_at.is_(None),
            )
        )
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == _key(NAME, "", name, scope))
            .values(failures=0, blocked_until=None)
        )


def _count(session: Session, key: str, now: datetime, *, refused: bool, detail: str) -> bool:
    """Add a failure or a refusal to the key's audit window; True when it opened the window
    with a failure (the first failure: the caller writes its row at once)."""
    row = _locked(session, key)
    opened = row.window_started_at is None or now - row.window_started_at >= AUDIT_WINDOW
    if opened:
        if row.window_started_at is not None:
            _write_summary(session, row, now)
        row.window_started_at = now
        row.window_failures = 0
        row.window_refused = 1 if refused else 0
        row.window_detail = [detail]
        session.flush()
        return not refused
    if refused:
        row.window_refused += 1
    else:
        row.window_failures += 1
    seen = list(row.window_detail or [])
    if detail not in seen and len(seen) < DETAIL_MAX:
        row.window_detail = [*seen, detail]
    session.flush()
    return False


def _write_summary(session: Session, row: LoginThrottle, now: datetime) -> None:
    """One audit row for a closed window (nothing when it held only the first failure)."""
    if not row.window_failures and not row.window_refused:
        return
    assert row.window_started_at is not None
    kind, _sep, rest = row.key.partition(":")
    code = kind.startswith(CODE)
    kind = kind.removeprefix(CODE)
    since = row.window_started_at
    until = min(now, since + AUDIT_WINDOW)
    after: dict[str, Any] = {
        "failures": row.window_failures,
        "refused": row.window_refused,
        "since": since.isoformat(),
        "until": until.isoformat(),
    }
    target_id: str | None
    if kind == NAME:
        op_id = session.scalar(select(Operator.id).where(Operator.username == rest))
        action = "login.code_failed_repeated" if code else "login_failed_repeated"
        target_type, username = "operator", rest
        target_id = None if op_id is None else str(op_id)
        after["addresses"] = list(row.window_detail or [])
    else:  # addr: refusals while the address itself was blocked
        action = "login.code_refused_repeated" if code else "login_refused_repeated"
        target_type, target_id, username = "address", rest, None
        after["names"] = list(row.window_detail or [])
    append_audit(
        session,
        AuditLog(
            occurred_at=now,
            username=username,
            action=action,
            target_type=target_type,
            target_id=target_id,
            after=after,
            remote_addr=rest if kind == ADDR else None,
        ),
    )


def flush_due(session: Session, now: datetime) -> int:
    """Write the summaries of windows closed by now and forget idle keys; returns the number
    of summaries written (flushes; the caller commits)."""
    written = 0
    due = session.scalars(
        select(LoginThrottle.key)
        .where(LoginThrottle.window_started_at <= now - AUDIT_WINDOW)
        .limit(FLUSH_BATCH)
    ).all()
    for key in due:
        row = _locked(session, key)
        # another process may have closed it between the query and the lock
        if row.window_started_at is None or now - row.window_started_at < AUDIT_WINDOW:
            continue
        if row.window_failures or row.window_refused:
            _write_summary(session, row, now)
            written += 1
        row.window_started_at = None
        row.window_failures = row.window_refused = 0
        row.window_detail = None
    if due:
        session.flush()
    # keys with nothing pending and no recent failure are of no use any more; looked for
    # first, so that a sign-in does not take the database's write lock for nothing
    idle = (
        LoginThrottle.window_started_at.is_(None),
        LoginThrottle.last_failure_at < now - RESET_AFTER - timedelta(days=1),
    )
    if session.scalar(select(LoginThrottle.key).where(*idle).limit(1)) is not None:
        session.execute(delete(LoginThrottle).where(*idle))
    return written
