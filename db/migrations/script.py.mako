"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import db.types
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
% if up_revision == "0001":
    # name search (FTS5 on SQLite, pg_trgm on PostgreSQL) and the rows the records name
    # kept (triggers): not expressible in the models
    from db.kept import create_kept
    from db.search import create_search

    create_search(op.get_bind())
    create_kept(op.get_bind())
% endif


def downgrade() -> None:
% if up_revision == "0001":
    from db.kept import drop_kept
    from db.search import drop_search

    drop_kept(op.get_bind())
    drop_search(op.get_bind())
% endif
    ${downgrades if downgrades else "pass"}
