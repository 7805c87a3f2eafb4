"""Shared fixtures: a migrated SQLite database per test; an empty PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade


@pytest.fixture(autouse=True)
def _umask_kept() -> Iterator[None]:
    """A test that runs the ``nyutai`` group in-process (CliRunner) sets the umask to 077
    (db.files); give the next test the umask the run started with."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nyutai.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server (scripts/test starts one and
    sets NYUTAI_TEST_PG_URL); dropped afterwards. Skips without a server, fails in CI."""
    server = os.environ.get("NYUTAI_TEST_PG_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("NYUTAI_TEST_PG_URL is not set in CI: scripts/test should have started it")
        pytest.skip("no PostgreSQL server (NYUTAI_TEST_PG_URL unset)")
    name = f"nyutai_test_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
