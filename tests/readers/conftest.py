"""Fixtures for reader tests: a sink that waits for events, shorter retry delays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reader_helpers import EventSink

import readers.base


@pytest.fixture
def sink() -> EventSink:
    return EventSink()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Production backs off to 8 s; tests only need to see the retry happen.
    monkeypatch.setattr(readers.base.SupervisedReader, "retry_min", 0.1)
    monkeypatch.setattr(readers.base.SupervisedReader, "retry_max", 0.5)
    yield
