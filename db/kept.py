"""The rows the records name are kept: the database refuses to delete them.

The controller's records (``events``, ``presence``, ``alarms``) name people, cards, doors,
areas, visits and photos by id, without foreign keys. A foreign key checked each row as it
was written: on PostgreSQL one lookup and one row lock (``FOR KEY SHARE``, itself written to
the WAL) per id per row, about a quarter of the server's work for a batch of crossings, taken
on the rows every controller shares. And it could refuse a record: a card deleted after the
controller's memory last heard of it made the whole batch unwritable, the strikes of every
presentation in it held.

A record states what the controller decided with what it knew; it is never refused. What a
foreign key guarded, that the rows a record names stay there to be read, holds instead
because those rows are never deleted: nyutai retires a person (``active``) or a card
(``state``), it does not delete them, and triggers make the database refuse a ``DELETE``, or
a change of ``id``, on those tables from any client (``nyutai: ... kept for the records``;
SQLSTATE 23001 ``restrict_violation`` on PostgreSQL). No race: unlike a check "is it named
anywhere?", a refusal without condition cannot be passed by a record written at the moment
of the delete.

Created by the initial migration (``create_kept``), beside the name search's structures.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

# what a record names: the events' and alarms' and presence's id columns point here
KEPT_TABLES = ("people", "credentials", "doors", "areas", "visits", "snapshots")
MESSAGE = "nyutai: {table} rows are kept for the records (retire them instead of deleting)"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION nyutai_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'restrict_violation',
        MESSAGE = replace('{MESSAGE}', '{{table}}', TG_TABLE_NAME);
END
$$
"""


def _sqlite_ddl(table: str) -> list[str]:
    refuse = f"SELECT RAISE(ABORT, '{MESSAGE.format(table=table)}');"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_kept_delete BEFORE DELETE ON {table} "
        f"BEGIN {refuse} END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_kept_id BEFORE UPDATE OF id ON {table} "
        f"WHEN new.id IS NOT old.id BEGIN {refuse} END",
    ]


def _postgresql_ddl(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_kept_delete BEFORE DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION nyutai_kept()",
        f"CREATE TRIGGER {table}_kept_id BEFORE UPDATE OF id ON {table} "
        "FOR EACH ROW WHEN (new.id IS DISTINCT FROM old.id) EXECUTE FUNCTION nyutai_kept()",
        # TRUNCATE passes row triggers by: refused as a statement
        f"CREATE TRIGGER {table}_kept_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION nyutai_kept()",
    ]


def create_kept(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        for table in KEPT_TABLES:
            for ddl in _postgresql_ddl(table):
                conn.exec_driver_sql(ddl)
    else:
        for table in KEPT_TABLES:
            for ddl in _sqlite_ddl(table):
                conn.exec_driver_sql(ddl)


def drop_kept(conn: Connection) -> None:
    for table in KEPT_TABLES:
        for suffix in ("delete", "id", "truncate"):
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_kept_{suffix} ON {table}")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_kept_{suffix}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS nyutai_kept()")
