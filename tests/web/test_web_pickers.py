"""The picker search runs each part of a short name match on its own index and merges them
(web.pickers.pick, db.search.name_branches): what it answers must be what the single OR
query answered -- name starts and kana starts, in name order, at most PICK_LIMIT, "more"
when there are others."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Person
from web import pickers


def _staff() -> Select[Person]:
    return (
        select(Person).where(Person.kind == "staff").order_by(Person.kind, Person.name, Person.id)
    )


def test_short_text_merges_name_and_kana_starts_in_name_order(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        s.add_all(
            [
                Person(name="佐藤 誠", name_kana="さとう まこと", kind="staff"),
                Person(name="左藤 翔", name_kana="さとう しょう", kind="staff"),  # kana only
                Person(name="佐藤 蓮", name_kana=None, kind="staff"),  # name only
                Person(name="鈴木 愛", name_kana="すずき あい", kind="staff"),
                Person(name="佐藤 客", name_kana="さとう", kind="visitor"),  # not staff
            ]
        )
        s.commit()
        got = pickers.pick(s, _staff(), "佐藤")
        assert [r["label"] for r in got["results"]] == ["佐藤 蓮", "佐藤 誠"]  # code point order
        got = pickers.pick(s, _staff(), "さと")
        assert [r["label"] for r in got["results"]] == ["佐藤 誠", "左藤 翔"]
        assert got["more"] is False


def test_more_than_the_limit_is_bounded_and_flagged(session_factory: sessionmaker[Session]) -> None:
    n = pickers.PICK_LIMIT + 5
    with session_factory() as s:
        s.add_all(Person(name=f"佐藤 {i:03d}", kind="staff") for i in range(n))
        s.add_all(
            Person(name=f"左藤 {i:03d}", name_kana=f"さとう {i:03d}", kind="staff")
            for i in range(n)
        )
        s.commit()
        by_name = pickers.pick(s, _staff(), "佐藤")
        assert [r["label"] for r in by_name["results"]] == [
            f"佐藤 {i:03d}" for i in range(pickers.PICK_LIMIT)
        ]
        assert by_name["more"] is True
        by_kana = pickers.pick(s, _staff(), "さと")
        assert [r["label"] for r in by_kana["results"]] == [
            f"左藤 {i:03d}" for i in range(pickers.PICK_LIMIT)
        ]
        assert by_kana["more"] is True
