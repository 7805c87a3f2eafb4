"""Database URLs and outages: the multi-host form, pinged pools, and what counts as "away".

The real failover (a primary stopped, its standby promoted) is tests/test_failover.py; these
run without any server.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from db.engine import (
    PG_CONNECT_TIMEOUT_SECONDS,
    database_unavailable,
    make_engine,
    postgresql_options,
)
from web import create_app

MULTI = (
    "postgresql+psycopg://nyutai@/nyutai?host=db-a:5432&host=db-b:5433"
    "&target_session_attrs=read-write"
)


def test_a_multi_host_url_reaches_libpq_with_both_servers() -> None:
    engine = make_engine(MULTI)
    _, opts = engine.dialect.create_connect_args(engine.url)
    assert opts["host"] == "db-a,db-b"
    assert opts["port"] == "5432,5433"
    assert opts["target_session_attrs"] == "read-write"
    assert opts["dbname"] == "nyutai"
    # a connection left over from a stopped primary is replaced, not reused
    assert engine.pool._pre_ping  # type: ignore[attr-defined]


def test_libpq_form_and_connect_timeout() -> None:
    engine = make_engine("postgresql+psycopg://u@/d?host=a,b&port=1,2")
    _, opts = engine.dialect.create_connect_args(engine.url)
    assert (opts["host"], opts["port"]) == ("a,b", "1,2")
    # each server gets a bounded time to answer; the URL may say otherwise
    args = postgresql_options(MULTI, {})["connect_args"]
    assert args["connect_timeout"] == PG_CONNECT_TIMEOUT_SECONDS
    # a primary that loses power sends no reset: a waiting connection still gives up
    assert args["keepalives"] == 1 and args["tcp_user_timeout"] > 0
    given = postgresql_options(MULTI + "&connect_timeout=2&keepalives_idle=30", {})
    assert "connect_timeout" not in given["connect_args"]
    assert "keepalives_idle" not in given["connect_args"]


def test_sqlite_engines_are_unchanged() -> None:
    engine = make_engine("sqlite://")
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]


def test_what_counts_as_the_database_being_away() -> None:
    refused = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    read_only = InternalError(
        "INSERT", {}, psycopg.errors.ReadOnlySqlTransaction("read-only transaction")
    )
    duplicate = IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))
    assert database_unavailable(refused)
    assert database_unavailable(read_only)  # a standby that has not been promoted yet
    assert not database_unavailable(duplicate)  # a bug or a race: not an outage
    assert not database_unavailable(ValueError("x"))


@pytest.fixture
def away(tmp_path: Path) -> Flask:
    """A console whose database refuses connections (nothing listens on port 1)."""
    return create_app(
        test_config={
            "SECRET_KEY": "test-only-key-" + "x" * 40,
            "NYUTAI_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/d?connect_timeout=2",
            "NYUTAI_DATA_DIR": tmp_path,
            "WTF_CSRF_ENABLED": False,
            "TESTING": False,
        }
    )


def test_the_console_says_503_while_the_database_is_away(away: Flask) -> None:
    client = away.test_client()
    resp = client.post("/login", data={"username": "guard", "password": "x" * 12})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    page = resp.get_data(as_text=True)
    assert "データベースに接続できません" in page  # Japanese first
    assert "Traceback" not in page and "psycopg" not in page and "127.0.0.1" not in page
    with client.session_transaction() as s:
        s["sid"] = "a-session-token"  # a signed-in browser: its operator cannot be loaded
    resp = client.get("/dashboard")
    assert resp.status_code == 503
    resp = client.get("/api/v1/events", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503
    assert resp.is_json and resp.get_json()["error"]
