"""Alembic, driven from Python: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' must be doubled for configparser interpolation (passwords in PostgreSQL URLs)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_heads() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


# Tables in the database that the models do not describe: APScheduler's job store
# (controller.scheduler) creates and owns its own table.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic autogenerate filter: ignore tables owned by other libraries and the name
    search structures the migration creates by hand (db.search: the FTS5 table and its
    shadow tables on SQLite, the trigram and pattern indexes on PostgreSQL)."""
    from db.search import SEARCH_INDEXES, SEARCH_TABLE_PREFIX

    if type_ == "table" and name is not None and name.startswith(SEARCH_TABLE_PREFIX):
        return False
    if type_ == "index" and name in SEARCH_INDEXES:
        return False
    return not (type_ == "table" and name in FOREIGN_TABLES)
