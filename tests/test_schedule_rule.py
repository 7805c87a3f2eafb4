"""The one schedule rule (domain.schedule): what the form accepts is what the door does."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from controller.decision import within_schedule as door_allows
from domain.schedule import ScheduleError, parse_schedule, within_schedule

TOKYO = ZoneInfo("Asia/Tokyo")

# 2026-11-26 is a Thursday; times below are Tokyo wall time given as UTC (JST = UTC+9)
THU_2330 = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
FRI_0730 = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)
FRI_0830 = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
THU_1200 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SAT_0300 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def test_overnight_span_is_accepted_and_stored_on_its_start_day() -> None:
    assert parse_schedule("thu 18:00-08:00") == {"thu": [["18:00", "08:00"]]}
    assert parse_schedule("木 18:00〜08:00") == {"thu": [["18:00", "08:00"]]}


def test_overnight_span_opens_the_door_until_the_next_morning() -> None:
    s = parse_schedule("thu 18:00-08:00")
    assert door_allows(s, THU_2330, TOKYO)
    assert door_allows(s, FRI_0730, TOKYO)  # Friday morning belongs to Thursday's night
    assert not door_allows(s, FRI_0830, TOKYO)
    assert not door_allows(s, THU_1200, TOKYO)


@pytest.mark.parametrize("text", ["every day 09:00-17:00", "毎日 09:00-17:00", "09:00-17:00"])
def test_every_day(text: str) -> None:
    s = parse_schedule(text)
    assert s is not None and sorted(s) == sorted(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    assert door_allows(s, THU_1200, TOKYO)
    assert not door_allows(s, THU_2330, TOKYO)


def test_every_night_covers_saturday_early_morning() -> None:
    s = parse_schedule("毎日 22:00-06:00")
    assert door_allows(s, SAT_0300, TOKYO) and door_allows(s, THU_2330, TOKYO)
    assert not door_allows(s, THU_1200, TOKYO)


def test_day_range_may_wrap_over_the_weekend() -> None:
    assert parse_schedule("fri-mon 08:00-20:00") == {
        d: [["08:00", "20:00"]] for d in ("mon", "fri", "sat", "sun")
    }


def test_evening_to_midnight_is_not_overnight() -> None:
    assert parse_schedule("mon 18:00-00:00") == {"mon": [["18:00", "24:00"]]}


@pytest.mark.parametrize("bad", ["mon 08:00-08:00", "mon 24:00-08:00", "毎日", "daily 8-9"])
def test_empty_or_unreadable_spans_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


def test_the_controller_and_the_form_use_the_same_rule() -> None:
    s = {"wed": [["20:00", "06:00"]]}
    thu_0530_utc = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # Thursday 05:30 in Tokyo
    assert within_schedule(s, thu_0530_utc.astimezone(ZoneInfo("Asia/Tokyo")))
    assert door_allows(s, thu_0530_utc, TOKYO)
