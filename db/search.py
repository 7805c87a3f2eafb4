"""Searching people by part of a name without reading the people table.

SQLite: an FTS5 table ``people_fts`` with the trigram tokenizer (any 3+ character part of
``name`` or ``name_kana``), kept equal to ``people`` by triggers, so every writer (the
console, the demo, the scale generator's bulk inserts) maintains it without knowing.
PostgreSQL: ``pg_trgm`` GIN indexes on the same columns serve ``ILIKE '%part%'``.

Trigrams cannot index a 1- or 2-character part (most Japanese family names are two
characters), so a short text matches names and kana that *start* with it, through the
ordinary B-tree indexes (``ix_people_name``, ``ix_people_name_kana``): 「佐藤」 finds every
佐藤, 「藤」 does not find 佐藤. The console says so beside the field.

The virtual table, its shadow tables, triggers and the trigram indexes are not in the
models (SQLAlchemy cannot describe them): the initial migration creates them with
``create_search`` and ``db.migrate.include_object`` leaves them out of the models ==
migration comparison (``SEARCH_OBJECTS``).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, column, literal_column, or_, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.models import Person

MIN_TRIGRAM = 3

SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS people_fts USING fts5("
    "name, name_kana, content='people', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS people_fts_ai AFTER INSERT ON people BEGIN "
    "INSERT INTO people_fts(rowid, name, name_kana) VALUES (new.id, new.name, new.name_kana); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS people_fts_ad AFTER DELETE ON people BEGIN "
    "INSERT INTO people_fts(people_fts, rowid, name, name_kana) "
    "VALUES ('delete', old.id, old.name, old.name_kana); END",
    "CREATE TRIGGER IF NOT EXISTS people_fts_au AFTER UPDATE OF name, name_kana ON people BEGIN "
    "INSERT INTO people_fts(people_fts, rowid, name, name_kana) "
    "VALUES ('delete', old.id, old.name, old.name_kana); "
    "INSERT INTO people_fts(rowid, name, name_kana) VALUES (new.id, new.name, new.name_kana); "
    "END",
    # rows that were there before the table existed (an upgrade of a filled database)
    "INSERT INTO people_fts(people_fts) VALUES ('rebuild')",
)
POSTGRES_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_people_name_trgm ON people USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_people_name_kana_trgm ON people "
    "USING gin (name_kana gin_trgm_ops)",
    # LIKE 'prefix%' on a non-C collation needs the pattern operator class
    "CREATE INDEX IF NOT EXISTS ix_people_name_pattern ON people (name text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS ix_people_name_kana_pattern ON people (name_kana text_pattern_ops)",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS people_fts_au",
    "DROP TRIGGER IF EXISTS people_fts_ad",
    "DROP TRIGGER IF EXISTS people_fts_ai",
    "DROP TABLE IF EXISTS people_fts",
)
POSTGRES_DROP = (
    "DROP INDEX IF EXISTS ix_people_name_kana_pattern",
    "DROP INDEX IF EXISTS ix_people_name_pattern",
    "DROP INDEX IF EXISTS ix_people_name_kana_trgm",
    "DROP INDEX IF EXISTS ix_people_name_trgm",
)
# what include_object leaves out of the models == migration comparison
SEARCH_TABLE_PREFIX = "people_fts"
SEARCH_INDEXES = frozenset(
    {
        "ix_people_name_trgm",
        "ix_people_name_kana_trgm",
        "ix_people_name_pattern",
        "ix_people_name_kana_pattern",
    }
)


def create_search(conn: Connection) -> None:
    """Create the name search structures (called by the initial migration; idempotent)."""
    ddl = SQLITE_DDL if conn.dialect.name == "sqlite" else POSTGRES_DDL
    for stmt in ddl:
        conn.exec_driver_sql(stmt)


def drop_search(conn: Connection) -> None:
    ddl = SQLITE_DROP if conn.dialect.name == "sqlite" else POSTGRES_DROP
    for stmt in ddl:
        conn.exec_driver_sql(stmt)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_filter(dialect: str, text: str) -> ColumnElement[bool]:
    """A condition on ``Person`` served by an index: part of the name (3+ characters) or the
    start of the name (shorter), in ``name`` or ``name_kana``."""
    text = text.strip()
    if len(text) >= MIN_TRIGRAM:
        if dialect == "sqlite":
            phrase = '"' + text.replace('"', '""') + '"'  # one FTS5 phrase: a substring
            fts = table("people_fts", column("rowid"))
            hits = select(fts.c.rowid).where(literal_column("people_fts").op("MATCH")(phrase))
            return Person.id.in_(hits)
        like = "%" + _like_escape(text) + "%"
        return or_(Person.name.ilike(like, escape="\\"), Person.name_kana.ilike(like, escape="\\"))
    if dialect == "sqlite":
        # a range on the binary-collated index: exactly "starts with", no LIKE case rules
        top = text + "\U0010ffff"
        return or_(
            and_(Person.name >= text, Person.name < top),
            and_(Person.name_kana >= text, Person.name_kana < top),
        )
    like = _like_escape(text) + "%"
    return or_(Person.name.like(like, escape="\\"), Person.name_kana.like(like, escape="\\"))


def matching_people(session: Session, text: str) -> Select[int]:
    """Ids of the people whose name or kana matches ``text`` (see ``name_filter``)."""
    return select(Person.id).where(name_filter(session.get_bind().dialect.name, text))
