"""A burst of presentations: the door thread stays at most AHEAD_WORKS works ahead of the
writer, and a committed presentation's feedback (and strike) does not wait behind the
presentations still queued."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller import recorder  # noqa
from controller.state import Call
from nyutai.demo import DEMO_CARDS
from readers import Feedback
from readers.events import CardPresented
from tests.controller.conftest import Site

BURST = 300
ROOT = Path(__file__).resolve().parents[2]


def _burst(site: Site, n: int) -> list[tuple[str, int]]:
    """Queue ``n`` presentations while the loop is held, let it go, and return the loop's
    log: ("decide", i) as each is handled, ("feedback", i) as each reader answer is given."""
    ctl = site.ctl
    log: list[tuple[str, int]] = []
    decided = 0
    answered = 0
    handle = ctl.handlers[CardPresented]

    def on_card(msg: Any) -> object:
        nonlocal decided
        decided += 1
        log.append(("decide", decided))
        return handle(msg)

    original_feedback = ctl.feedback

    def feedback(reader_id: str, kind: Feedback) -> None:
        nonlocal answered
        if kind in (Feedback.GRANTED, Feedback.DENIED):
            answered += 1
            log.append(("feedback", answered))
        original_feedback(reader_id, kind)

    ctl.handlers[CardPresented] = on_card
    ctl.feedback = feedback  # type: ignore[method-assign]
    gate = threading.Event()
    ctl.queue.put(Call(lambda: gate.wait(10)))
    tech, card = DEMO_CARDS["yamada"]
    for _ in range(n):
        ctl.queue.put(CardPresented("sr-in", tech, card, time.monotonic(), datetime.now(UTC)))
    gate.set()
    deadline = time.monotonic() + 60
    while answered < n:
        assert time.monotonic() < deadline, f"{answered} of {n} answered"
        time.sleep(0.01)
    return log


def test_a_committed_presentation_is_answered_before_the_burst_is_decided(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unbounded wait for room makes the bound exact (the product waits at most
    # AHEAD_WAIT_SECONDS, so a hung commit cannot hold the doors)
    monkeypatch.setattr(recorder, "AHEAD_WAIT_SECONDS", 30.0)
    site.ctl.recorder.batch_sizes.clear()
    log = _burst(site, BURST)
    first_answer = log.index(("feedback", 1))
    last_decision = log.index(("decide", BURST))
    # the first answer overtakes the presentations queued after it (before, every callback
    # queued behind the whole burst)
    assert first_answer < last_decision, log[:10]
    sizes = list(site.ctl.recorder.batch_sizes)
    assert sum(sizes) >= BURST
    # never more decided-but-uncommitted works than the bound
    assert max(sizes) <= recorder.AHEAD_WORKS, sizes
    # and still written in groups, not one commit per presentation
    assert len(sizes) < BURST


def test_the_wait_for_room_is_bounded_while_a_commit_hangs(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that does not return: the door thread waits at most AHEAD_WAIT_SECONDS per
    work, then goes on deciding (the recorder journals once the commit's patience is over)."""
    rec = site.ctl.recorder
    release = threading.Event()
    commit: Callable[[list[recorder.Work]], None] = rec._commit

    def slow_commit(works: list[recorder.Work]) -> None:
        release.wait(30)
        commit(works)

    monkeypatch.setattr(rec, "_commit", slow_commit)
    monkeypatch.setattr(recorder, "AHEAD_WAIT_SECONDS", 0.01)
    decided = threading.Event()
    count = 0
    handle = site.ctl.handlers[CardPresented]

    def on_card(msg: Any) -> object:
        nonlocal count
        count += 1
        if count == recorder.AHEAD_WORKS * 2:
            decided.set()
        return handle(msg)

    site.ctl.handlers[CardPresented] = on_card
    tech, card = DEMO_CARDS["yamada"]
    for _ in range(recorder.AHEAD_WORKS * 2):
        site.ctl.queue.put(CardPresented("sr-in", tech, card, time.monotonic(), datetime.now(UTC)))
    try:
        # twice the bound decided while not one commit has returned
        assert decided.wait(10), count
    finally:
        release.set()
    site.settle()


def test_what_the_start_loaded_is_kept_out_of_full_collections(site: Site) -> None:
    """A full collection in a burst stopped every thread for 30-50 ms while it walked what
    the start had loaded; the start freezes that heap (once per process)."""
    from controller import daemon

    assert site.ctl.facts is not None
    assert daemon._heap_frozen  # noqa: SLF001
    assert gc.get_freeze_count() > 0


def test_freeze_heap_takes_the_live_objects_out_of_the_collected_generations() -> None:
    code = (
        "import gc\n"
        "from controller import daemon\n"
        "class Loaded: pass\n"
        "kept = Loaded()\n"
        "assert any(o is kept for o in gc.get_objects())\n"
        "daemon.freeze_heap()\n"
        "assert not any(o is kept for o in gc.get_objects())\n"
        "later = Loaded()\n"
        "daemon.freeze_heap()  # once per process: a second start freezes nothing more\n"
        "assert any(o is later for o in gc.get_objects())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
