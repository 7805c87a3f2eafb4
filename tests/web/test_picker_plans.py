"""The pickers' "starts with" parts are served in order by an index on PostgreSQL, whatever
the database's collation (db.search.name_branches): a range of the index, no sort, so a
common family name among a million staff stops after the first page."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.engine import make_engine
from db.migrate import upgrade
from db.models import Person, PersonKind
from db.search import name_branches
from tests.web.conftest import price_out


@pytest.mark.postgres
@pytest.mark.parametrize("text", ["佐藤", "サト", "さと"])
def test_postgresql_name_parts_are_an_ordered_index_range(pg_url: str, text: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    price_out(engine, "enable_seqscan", "enable_sort")  # a plan that must sort keeps its Sort
    staff = (
        select(Person)
        .where(Person.kind == PersonKind.STAFF, Person.active.is_(True))
        .order_by(Person.kind, Person.name, Person.id)
    )
    try:
        with Session(engine) as s:
            branches = name_branches("postgresql", text)
            assert branches
            for cond, order in branches:
                q = staff.where(cond)
                if order:
                    q = q.order_by(None).order_by(*order)
                compiled = q.limit(51).compile(
                    dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                )
                plan = "\n".join(
                    r[0] for r in s.connection().exec_driver_sql(f"EXPLAIN {compiled}")
                )
                assert "Sort" not in plan, plan
                assert "Seq Scan" not in plan, plan
                cond_lines = [ln for ln in plan.splitlines() if "Index Cond" in ln]
                # the name (or kana) bounds the index range; not a walk filtered row by row
                assert any("name" in ln and ">=" in ln for ln in cond_lines), plan
    finally:
        engine.dispose()
