"""Snapshots linked to alarms and entries, and the tailgating check, with a real OpenCV camera
reading a generated video file."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.engine import session_scope
from db.models import Snapshot
from domain.config import CameraSection
from tests.controller.conftest import Site
from tests.hardware.hw_media import crossing_frames, write_video

FPS = 15.0


def camera_site(
    site_factory: Callable[..., Site],
    tmp_path: Path,
    walkers: list[tuple[int, int, int]],
    **door: object,
) -> tuple[Site, float]:
    """A site whose server-room door has a camera; returns it and the video's start time."""
    video = write_video(tmp_path / "door.avi", crossing_frames(walkers, 120), FPS)
    site = site_factory(cameras={"cam": CameraSection(url=str(video))}, camera="cam", **door)
    camera = site.ctl.cameras["cam"]
    deadline = time.monotonic() + 10
    while not camera.online and time.monotonic() < deadline:
        time.sleep(0.01)
    assert camera.online
    return site, time.monotonic()


def test_forced_door_alarm_has_a_snapshot_in_the_chain(
    site_factory: Callable[..., Site], tmp_path: Path
) -> None:
    site, _ = camera_site(site_factory, tmp_path, [])
    time.sleep(0.3)  # a few frames in the buffer
    site.io("sr-contact").drive(True)
    site.settle()
    (alarm,) = site.alarms("door_forced")
    assert alarm.snapshot_id is not None
    (snap_event,) = site.events(reason="snapshot")
    # the chained snapshot row names the alarm's event (the alarm row is not chained)
    assert snap_event.detail and snap_event.detail["event_id"] == alarm.event_id
    with session_scope(site.sessions) as s:
        snap = s.get(Snapshot, alarm.snapshot_id)
        assert snap is not None
        data = (site.cfg.data_dir / snap.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == snap.sha256 == snap_event.snapshot_sha256
    assert data[:2] == b"\xff\xd8"


def test_snapshot_on_entry(site_factory: Callable[..., Site], tmp_path: Path) -> None:
    site, _ = camera_site(site_factory, tmp_path, [], snapshot_on_entry=True)
    time.sleep(0.3)
    granted = site.tap("sr-in", "yamada")
    (snap_event,) = site.events(reason="snapshot")
    assert snap_event.detail == {"event_id": granted["event_id"]}


@pytest.mark.parametrize(
    ("walkers", "alarm"), [([(18, 36, 120)], False), ([(18, 36, 60), (18, 36, 180)], True)]
)
def test_tailgating(
    site_factory: Callable[..., Site],
    tmp_path: Path,
    walkers: list[tuple[int, int, int]],
    alarm: bool,
) -> None:
    site, started = camera_site(site_factory, tmp_path, walkers)
    # grant just before the figures walk in (frame 18 = 1.2 s into the video)
    time.sleep(max(0.0, started + 0.8 - time.monotonic()))
    site.tap("sr-in", "yamada")
    site.settle(6.0)
    alarms = site.alarms("tailgating")
    assert bool(alarms) is alarm
    if alarm:
        assert alarms[0].detail == {"people": 2, "grants": 1}
        assert alarms[0].snapshot_id is not None


def test_a_failed_camera_is_reported_and_never_blocks_the_door(
    site_factory: Callable[..., Site], tmp_path: Path
) -> None:
    site = site_factory(
        cameras={"cam": CameraSection(url=str(tmp_path / "missing.avi"))},
        camera="cam",
        snapshot_on_entry=True,
    )
    deadline = time.monotonic() + 10
    while not site.alarms("camera_offline") and time.monotonic() < deadline:
        site.settle(0.1)
    (alarm,) = site.alarms("camera_offline")
    assert alarm.reader == "camera:cam"
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    assert site.io("sr-strike").is_active
    assert site.events(reason="snapshot") == []
