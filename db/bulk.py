"""Many rows in one PostgreSQL statement: ``COPY``, or one array per column through ``unnest``.

The controller's group commits write a batch of events, presence rows and change rows. As an
``executemany`` each row costs the driver and SQLAlchemy their per-row work, and each
statement a round trip to a server that shares the controller's cores. Either way here the
statement's text does not depend on the number of rows (psycopg prepares an ``unnest``
statement once), and the values go through the columns' own bind processors: the stored
values are what an ``executemany`` would have stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class Unnest:
    """``unnest(%s::T1[], %s::T2[], ...)`` for some columns of a table, and how to fill it."""

    columns: tuple[str, ...]
    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]  # bulk.processors

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """One list per column, each value as the column's type binds it."""
        out: list[list[Any]] = []
        for key, proc in zip(self.columns, self.processors, strict=True):
            values = [r[key] for r in rows]
            out.append(values if proc is None else [proc(v) for v in values])
        return out


Processors = tuple[Callable[[Any], Any] | None, ...]
_PROCESSORS: dict[tuple[int, str, tuple[str, ...]], Processors] = {}
_PLANS: dict[tuple[int, str, tuple[str, ...]], Unnest] = {}


def processors(table: Table, columns: Sequence[str], dialect: Dialect) -> Processors:
    """The columns' types' own bind processors (aware UTC -> naive, JSON), as a Core insert
    binds the values."""
    key = (id(dialect), table.name, tuple(columns))
    procs = _PROCESSORS.get(key)
    if procs is None:
        procs = tuple(table.c[c].type._cached_bind_processor(dialect) for c in columns)  # noqa: SLF001
        _PROCESSORS[key] = procs
    return procs


def unnest(table: Table, columns: Sequence[str], dialect: Dialect) -> Unnest:
    key = (id(dialect), table.name, tuple(columns))
    plan = _PLANS.get(key)
    if plan is None:
        casts = [f"%s::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns]
        plan = Unnest(
            columns=tuple(columns),
            sql=f"unnest({', '.join(casts)})",
            processors=processors(table, columns, dialect),
        )
        _PLANS[key] = plan
    return plan


def copy(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows through ``COPY table (...) FROM STDIN`` on the connection's own transaction: the
    driver formats them in C, at half the CPU of an ``executemany`` or of ``unnest`` arrays
    (which psycopg dumps element by element in Python). The rows' keys are the columns; a
    driver error comes out as SQLAlchemy's (an IntegrityError stays one)."""
    if not rows:
        return
    columns = list(rows[0])
    procs = processors(table, columns, conn.dialect)
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for r in rows:
                copy.write_row(
                    [r[k] if p is None else p(r[k]) for k, p in zip(columns, procs, strict=True)]
                )
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
