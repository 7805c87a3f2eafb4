"""SQLite WAL checkpoints run beside the writer, not inside its commits (db.wal)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from db.wal import WalCheckpointer
from nyutai.demo import DEMO_CARDS
from readers.events import CardPresented
from tests.controller.conftest import Site

PAGE = 4096
FRAME = PAGE + 24  # each WAL frame: a page and its header


def _db_file(site: Site) -> Path:
    return Path(site.cfg.database_url.removeprefix("sqlite:///"))


def _wal_frames(site: Site) -> int:
    """Frames the WAL file has held since it was last truncated (its size: a restart
    overwrites from the start, so the size is the high-water mark)."""
    path = Path(str(_db_file(site)) + "-wal")
    return max(0, (path.stat().st_size - 32) // FRAME) if path.exists() else 0


def _burst(site: Site, n: int) -> None:
    """``n`` presentations at once, the WAL emptied before (its size then tells the burst's)."""
    site.settle()
    with sqlite3.connect(_db_file(site)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tech, card = DEMO_CARDS["yamada"]
    before = len(site.events())
    for _ in range(n):
        site.ctl.queue.put(CardPresented("sr-in", tech, card, time.monotonic(), datetime.now(UTC)))
    site.settle()  # behind the burst in the queue, then every row written
    assert len(site.events()) == before + n


def _rows_in_main_file(site: Site, tmp_path: Path) -> int:
    """Events the database file itself holds, without its WAL: what a checkpoint copied."""
    copy = tmp_path / "main-only.db"
    shutil.copyfile(_db_file(site), copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def test_the_writer_does_not_checkpoint_in_its_commits(site: Site) -> None:
    checkpointer = site.ctl.recorder.checkpointer
    assert checkpointer is not None
    checkpointer.stop()  # nobody copies the WAL now: only a checkpoint in a commit could
    _burst(site, 1500)
    # SQLite's own checkpoint would have started the WAL over at 1,000 frames
    assert _wal_frames(site) > 1_200


def test_the_checkpointer_copies_committed_rows_into_the_database_file(
    site: Site, tmp_path: Path
) -> None:
    checkpointer = site.ctl.recorder.checkpointer
    assert checkpointer is not None
    site.settle(2 * checkpointer.period)
    before = _rows_in_main_file(site, tmp_path)
    # counted before the burst: its commits wake the checkpointer, whose pass may end before
    # the burst's last row is seen committed (the burst's own TRUNCATE precedes its rows)
    passes = checkpointer.passes
    _burst(site, 40)  # far below any automatic checkpoint
    deadline = time.monotonic() + 5
    while _rows_in_main_file(site, tmp_path) < before + 40:
        assert time.monotonic() < deadline, "the rows stayed in the WAL"
        time.sleep(checkpointer.period)
    # a pass counts itself just after its checkpoint returns
    while checkpointer.passes == passes:
        assert time.monotonic() < deadline, "rows reached the file without a pass"
        time.sleep(0.01)


def test_the_wal_starts_over_under_a_steady_stream_of_commits(site: Site) -> None:
    """Commits that never pause: a checkpoint beside them never finds the WAL fully copied,
    so only the writer's catch-up between two commits lets SQLite restart it."""
    recorder = site.ctl.recorder
    assert recorder.checkpointer is not None
    # a checkpointer with a short period from its first pass: the running one may be asleep
    # for its full default period, through most of the burst
    recorder.checkpointer.stop()
    checkpointer = WalCheckpointer(recorder.checkpointer.engine, period=0.01, reset_frames=256)
    checkpointer.start()
    recorder.checkpointer = checkpointer
    catch_ups = 0
    catch_up = checkpointer.catch_up

    def counted(conn: object) -> None:
        nonlocal catch_ups
        catch_ups += 1
        catch_up(conn)  # type: ignore[arg-type]

    checkpointer.catch_up = counted  # type: ignore[method-assign]
    _burst(site, 3000)
    assert catch_ups > 0
    # restarts keep it near 256 frames (360-400 measured); without the writer's catch-up the
    # checkpointer's own passes let it reach 1,100-2,700, and with no restart at all it would
    # hold every frame of the burst (about 3,900)
    assert _wal_frames(site) < 800, _wal_frames(site)
