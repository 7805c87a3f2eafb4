"""Many rows in one PostgreSQL statement: ``COPY``, one array per column through ``unnest``,
or one JSON text through ``json_to_recordset``.

The controller's group commits write a batch of events, presence rows and change rows. As an
``executemany`` each row costs the driver and SQLAlchemy their per-row work, and each
statement a round trip to a server that shares the controller's cores. Either way here the
statement's text does not depend on the number of rows (psycopg prepares an ``unnest``
statement once), and the values go through the columns' own bind processors: the stored
values are what an ``executemany`` would have stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import JSON, ColumnElement, Connection, DateTime, Table, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY
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


@dataclass(frozen=True)
class JsonRecords:
    """Rows as one JSON text parameter: ``source`` is ``json_to_recordset(%s::json) AS
    alias(col type, ...)`` and ``select`` the columns in order for ``INSERT ... SELECT``.
    The text is made by the JSON encoder in C, so a batch costs the driver one string: it
    can sit in a statement beside others (COPY cannot), and an ``unnest`` of arrays costs
    psycopg Python work per element."""

    columns: tuple[str, ...]
    source: str
    select: str
    convert: tuple[Callable[[Any], Any] | None, ...]

    def text(self, rows: Sequence[Mapping[str, Any]]) -> str:
        pairs = list(zip(self.columns, self.convert, strict=True))
        out = [{k: r[k] if c is None else c(r[k]) for k, c in pairs} for r in rows]
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _to_json(column: Any, proc: Callable[[Any], Any] | None, dialect: Dialect) -> Any:
    """A value as the column's type binds it, then as JSON can carry it: a time as ISO text
    (PostgreSQL parses it back to the same timestamp); a JSON column's value as the very text
    psycopg would send for it (declared ``text`` in the record and cast back, so the stored
    text is an insert's, JSON ``null`` for a missing value included)."""
    if isinstance(column.type, JSON):
        # psycopg's bind processor wraps the value (psycopg.types.json.Json); the driver then
        # dumps it with the dialect's serializer, json.dumps unless the engine set one
        dumps = getattr(dialect, "_json_serializer", None) or json.dumps

        def as_text(v: Any) -> Any:
            bound = v if proc is None else proc(v)
            if bound is None or isinstance(bound, str):  # SQL NULL, or serialized already
                return bound
            return dumps(bound.obj)

        return as_text
    if isinstance(getattr(column.type, "impl", column.type), DateTime):

        def iso(v: Any) -> Any:
            if v is None:
                return None
            bound = v if proc is None else proc(v)
            return bound.isoformat() if isinstance(bound, datetime) else bound

        return iso
    return proc


Processors = tuple[Callable[[Any], Any] | None, ...]
_PROCESSORS: dict[tuple[int, str, tuple[str, ...]], Processors] = {}
_PLANS: dict[tuple[int, str, tuple[str, ...]], Unnest] = {}
_RECORDS: dict[tuple[int, str, tuple[str, ...]], JsonRecords] = {}


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


def json_records(table: Table, columns: Sequence[str], dialect: Dialect, alias: str) -> JsonRecords:
    key = (id(dialect), table.name + "/" + alias, tuple(columns))
    plan = _RECORDS.get(key)
    if plan is None:
        procs = processors(table, columns, dialect)
        is_json = [isinstance(table.c[c].type, JSON) for c in columns]
        types = [
            "text" if j else table.c[c].type.compile(dialect=dialect)
            for c, j in zip(columns, is_json, strict=True)
        ]
        plan = JsonRecords(
            columns=tuple(columns),
            source=f"json_to_recordset(%s::json) AS {alias}("
            + ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
            + ")",
            select=", ".join(
                f"{alias}.{c}::json" if j else f"{alias}.{c}"
                for c, j in zip(columns, is_json, strict=True)
            ),
            convert=tuple(
                _to_json(table.c[c], p, dialect) for c, p in zip(columns, procs, strict=True)
            ),
        )
        _RECORDS[key] = plan
    return plan


def one_of(column: Any, values: Sequence[Any], dialect: Dialect) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%s::type[])``, one parameter, so
    the statement's text does not change with the number of values: psycopg prepares it
    once, and SQLAlchemy does not render a parameter per value (the change feed asks about
    hundreds of people each round)."""
    if dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(literal(list(values), ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(list(values)))


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
