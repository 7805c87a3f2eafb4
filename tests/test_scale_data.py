"""The benchmarks' scale generator writes rows the product accepts: the chain verifies, the
site file loads, and the controller's own loaders see the generated cards."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bench.scale_data import card_id, generate
from controller.facts import load_card, load_door
from controller.wiring import check_wiring
from db.engine import make_engine, make_session_factory
from db.models import Event, Person
from db.verify import verify_log
from domain.config import load_config


def _check(url: str, site_dir: Path) -> None:
    info = generate(url, people=1_200, events=3_000, doors=8, site_dir=site_dir)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            assert s.scalar(select(func.count()).select_from(Person)) == 1_200
            assert s.scalar(select(func.max(Event.seq))) == 3_000
            result = verify_log(s, "events", None)
            assert result.ok, result
            door = load_door(s, "door-03", ZoneInfo("Asia/Tokyo"))
            assert door is not None
            card = load_card(s, "felica", card_id(3), door.area.id)
            assert card.person is not None and card.person.id == 3
    finally:
        engine.dispose()
    assert info.site_file is not None
    cfg = check_wiring(load_config(info.site_file))
    assert len(cfg.doors) == 8 and len(cfg.readers) == 16


def test_generated_sqlite_database_verifies(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'scale.db'}", tmp_path)


@pytest.mark.postgres
def test_generated_postgresql_database_verifies(pg_url: str, tmp_path: Path) -> None:
    _check(pg_url, tmp_path)


def test_generated_crossings_pair_up_like_a_site(tmp_path: Path) -> None:
    """Each exit follows its person's entry to the same area, and at the end only the last
    few hours' entrants are inside, not a share of everyone (the monthly report's memory
    follows who is inside)."""
    url = f"sqlite:///{tmp_path / 'scale.db'}"
    generate(url, people=1_200, events=3_000, doors=8)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            rows = s.execute(
                select(Event.person_id, Event.area_id, Event.direction)
                .where(Event.decision == "granted", Event.direction.is_not(None))
                .order_by(Event.seq)
            ).all()
    finally:
        engine.dispose()
    where: dict[int, int] = {}  # person -> area they are inside
    exits = 0
    for pid, area, direction in rows:
        if direction == "in":
            assert pid not in where, f"person {pid} entered twice without leaving"
            where[pid] = area
        else:
            assert where.pop(pid, None) == area, f"person {pid} left an area they were not in"
            exits += 1
    assert exits > 1_000
    # events come every ~2.9 h of a year; exits are due 1-9 h after their entry
    assert len(where) <= 10, len(where)
