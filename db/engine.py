"""Engines and sessions, with the SQLite pragmas nyutai relies on.

PostgreSQL URLs may name several servers (libpq's multi-host form, see docs/failover.md):
``postgresql+psycopg://user@/nyutai?host=db-a:5432&host=db-b:5432&target_session_attrs=read-write``.
libpq tries them in order and keeps the one that accepts writes, so after a failover a
new connection reaches the promoted standby by itself. A pooled connection is pinged before
use (``pool_pre_ping``): one left over from the stopped primary is replaced, not handed to a
request. The controller's engine pings only connections that rested (``ping_rested_seconds``):
its writer checks one out for every group commit, and a ping there was a round trip per
commit; a connection used a moment ago that the server has since dropped fails its commit,
which the recorder journals and writes again, as in any outage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import db.changes  # noqa: F401 - installs the change feed on every Session of the process

# Seconds libpq waits for each server named in the URL before trying the next (a host that
# is down without refusing would otherwise hold a connection attempt for minutes).
PG_CONNECT_TIMEOUT_SECONDS = 5
# A server machine that loses power sends no reset: without these, a connection waiting on
# it (the controller's commit, a console request) would hang for TCP's own timeouts (many
# minutes). Probes after 10 s of silence, dropped after 3 unanswered (about 19 s), and data
# unacknowledged for 15 s drops the connection; the caller then journals or answers 503.
# A long query is not affected: the server's kernel answers probes while it computes.
PG_TCP_OPTIONS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}

# SQLSTATEs that mean "this server does not take writes now": a standby that has not been
# promoted (read_only_sql_transaction), a server shutting down or starting up.
UNAVAILABLE_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03"})

# Seconds a writer waits for SQLite's lock before failing: the controller and web share the file.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # NORMAL in WAL mode is durable across application crashes; only an OS crash can lose the
    # last commits. The controller asks for FULL on its own connection (see make_engine).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(
    url: str,
    *,
    synchronous_full: bool = False,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ping_rested_seconds: float | None = None,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection.
    PostgreSQL connections are pinged at every checkout, or with ``ping_rested_seconds`` only
    after resting in the pool that long."""
    postgresql = make_url(url).get_backend_name() == "postgresql"
    if postgresql:
        if ping_rested_seconds is not None:
            kwargs = {**kwargs, "pool_pre_ping": False}
        kwargs = postgresql_options(url, kwargs)
    engine = create_engine(url, **kwargs)
    if postgresql and ping_rested_seconds is not None:
        ping_rested(engine, ping_rested_seconds)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda conn, _rec: _sqlite_pragmas(conn, busy_timeout_ms))
        if synchronous_full:

            @event.listens_for(engine, "connect")
            def _full(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA synchronous=FULL")

    return engine


def ping_rested(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection at checkout only if it rested in the pool over ``seconds``;
    a dead one is replaced (the pool retries on ``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _resting(_dbapi_conn: Any, record: Any) -> None:
        record.info["rested_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        rested_from = record.info.pop("rested_from", None)
        if rested_from is None or time.monotonic() - rested_from <= seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"a rested connection failed its ping: {exc}") from exc


def postgresql_options(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pre-ping every checkout, bound each connection attempt and notice a silent server
    (PG_TCP_OPTIONS), unless the caller or the URL already says otherwise."""
    out = {**kwargs}
    out.setdefault("pool_pre_ping", True)
    query = make_url(url).query
    defaults: dict[str, int] = {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS, **PG_TCP_OPTIONS}
    connect_args = {**out.get("connect_args", {})}
    for key, value in defaults.items():
        if key not in query:
            connect_args.setdefault(key, value)
    out["connect_args"] = connect_args
    return out


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached or written just now (refused or
    cut connection, a standby still read-only, a locked SQLite file), not that the statement
    was wrong: the caller should wait and try again, not report a bug."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return getattr(exc.orig, "sqlstate", None) in UNAVAILABLE_SQLSTATES
    return False


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
