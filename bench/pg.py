"""A scratch database on the PostgreSQL server a benchmark is given (NYUTAI_BENCH_PG_URL)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database() -> Iterator[str]:
    """The URL of a new, empty database on the server, dropped afterwards."""
    server = os.environ.get("NYUTAI_BENCH_PG_URL")
    if not server:
        sys.exit("set NYUTAI_BENCH_PG_URL to a PostgreSQL server (a database is made on it)")
    from sqlalchemy import create_engine, make_url, text

    name = f"nyutai_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
