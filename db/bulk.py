"""Many rows in one PostgreSQL statement: one array per column, expanded by ``unnest``.

The controller's group commits write a batch of events, presence rows and change rows. As an
``executemany`` each row costs the driver and SQLAlchemy their per-row work, and each
statement a round trip to a server that shares the controller's cores. With ``unnest`` the
statement's text does not depend on the number of rows (psycopg prepares it once), the
driver adapts one list per column, and the values go through the columns' own bind
processors: the stored values are what an ``executemany`` would have stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect


@dataclass(frozen=True)
class Unnest:
    """``unnest(%s::T1[], %s::T2[], ...)`` for some columns of a table, and how to fill it."""

    columns: tuple[str, ...]
    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """One list per column, each value as the column's type binds it."""
        out: list[list[Any]] = []
        for key, proc in zip(self.columns, self.processors, strict=True):
            values = [r[key] for r in rows]
            out.append(values if proc is None else [proc(v) for v in values])
        return out


_PLANS: dict[tuple[int, str, tuple[str, ...]], Unnest] = {}


def unnest(table: Table, columns: Sequence[str], dialect: Dialect) -> Unnest:
    key = (id(dialect), table.name, tuple(columns))
    plan = _PLANS.get(key)
    if plan is None:
        cols = [table.c[c] for c in columns]
        casts = [f"%s::{c.type.compile(dialect=dialect)}[]" for c in cols]
        plan = Unnest(
            columns=tuple(columns),
            sql=f"unnest({', '.join(casts)})",
            # the types' own processors (aware UTC -> naive, JSON), as a Core insert binds
            processors=tuple(c.type._cached_bind_processor(dialect) for c in cols),  # noqa: SLF001
        )
        _PLANS[key] = plan
    return plan


def insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT INTO table (...) SELECT * FROM unnest(...)``: the rows' keys are the columns."""
    if not rows:
        return
    plan = unnest(table, list(rows[0]), conn.dialect)
    names = ", ".join(plan.columns)
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT * FROM {plan.sql}", tuple(plan.arrays(rows))
    )
