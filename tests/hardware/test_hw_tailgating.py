"""Tailgating counts on generated videos, written and read back through OpenCV (MJPG .avi)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hw_media import crossing_frames, write_video

import hardware.camera as camera_mod
from hardware.camera import Camera
from hardware.tailgating import (
    CrossingSettings,
    TailgateResult,
    TailgateWatch,
    count_people_crossing,
)

FPS = 15.0


def through_a_file(tmp_path: Path, frames: list[np.ndarray], name: str = "v.avi") -> list:
    """Frames as a camera would deliver them: MJPG-compressed, then decoded."""
    path = write_video(tmp_path / name, frames, FPS)
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    assert len(out) == len(frames)
    return out


@pytest.mark.parametrize(
    ("walkers", "total", "expected"),
    [
        pytest.param([], 45, 0, id="static scene"),
        pytest.param([(15, 45, 120)], 60, 1, id="one person"),
        pytest.param([(15, 40, 120), (50, 75, 120)], 90, 2, id="two, one after the other"),
        pytest.param([(15, 45, 60), (15, 45, 185)], 60, 2, id="two side by side"),
        pytest.param([(15, 40, 120), (22, 47, 120)], 60, 2, id="two close behind"),
        # Already in the picture on the first frame: must not leave a ghost behind.
        pytest.param([(-10, 20, 120), (25, 50, 120)], 60, 2, id="first one in view at start"),
    ],
)
def test_count(tmp_path: Path, walkers: list, total: int, expected: int) -> None:
    frames = through_a_file(tmp_path, crossing_frames(walkers, total))
    assert count_people_crossing(frames) == expected


def test_direction(tmp_path: Path) -> None:
    leftwards = [np.ascontiguousarray(f[:, ::-1]) for f in crossing_frames([(15, 45, 120)], 60)]
    frames = through_a_file(tmp_path, leftwards)
    assert count_people_crossing(frames, CrossingSettings(direction="forward")) == 0
    assert count_people_crossing(frames, CrossingSettings(direction="backward")) == 1


def test_horizontal_line(tmp_path: Path) -> None:
    # The same walk turned 90 degrees: people move down the picture across y = line.
    frames = [np.ascontiguousarray(np.rot90(f, -1)) for f in crossing_frames([(15, 45, 120)], 60)]
    frames = through_a_file(tmp_path, frames)
    assert count_people_crossing(frames, CrossingSettings(axis="y")) == 1
    assert count_people_crossing(frames, CrossingSettings(axis="x")) == 0


def test_crossings_before_count_from_are_not_counted(tmp_path: Path) -> None:
    frames = through_a_file(tmp_path, crossing_frames([(10, 30, 120), (45, 70, 120)], 80))
    assert count_people_crossing(frames) == 2
    assert count_people_crossing(frames, count_from=40) == 1


def test_large_frames_are_scaled_down(tmp_path: Path) -> None:
    frames = [cv2.resize(f, (640, 480)) for f in crossing_frames([(15, 45, 120)], 60)]
    assert count_people_crossing(through_a_file(tmp_path, frames)) == 1


class RecordingResults:
    def __init__(self) -> None:
        self.results: list[TailgateResult] = []
        self.done = threading.Event()

    def __call__(self, result: TailgateResult) -> None:
        self.results.append(result)
        self.done.set()


@pytest.mark.parametrize(
    ("walkers", "expected"), [([(18, 36, 120)], 1), ([(18, 36, 60), (18, 36, 180)], 2)]
)
def test_watch_counts_from_a_live_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, walkers: list, expected: int
) -> None:
    # The file starts with a second of empty corridor; the walkers pass in its second
    # second. The grant is put one second after the first frame, as a reader would be.
    monkeypatch.setattr(TailgateWatch, "poll_seconds", 0.2)
    video = write_video(tmp_path / "door.avi", crossing_frames(walkers, 45), FPS)
    online = threading.Event()
    first_frame: list[float] = []

    def status(_camera: str, is_online: bool, _reason: str) -> None:
        if is_online:
            first_frame.append(time.monotonic())
            online.set()

    results = RecordingResults()
    with Camera("door-cam", str(video), buffer_seconds=3.0, on_status=status) as cam:
        assert online.wait(10)
        granted_at = first_frame[0] + 1.0
        watch = TailgateWatch(cam, window_seconds=1.8, context_seconds=1.0)
        watch.after_grant("front", granted_at, results)
        assert results.done.wait(15)
    (result,) = results.results
    assert (result.door, result.granted_at, result.people) == ("front", granted_at, expected)
    assert result.tailgating is (expected > 1)


def test_watch_without_frames_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class DeadCamera:
        def frames_between(self, start: float, end: float) -> list:
            return []

    monkeypatch.setattr(TailgateWatch, "poll_seconds", 0.05)
    results = RecordingResults()
    TailgateWatch(DeadCamera(), window_seconds=0.1).after_grant("front", time.monotonic(), results)
    assert results.done.wait(5)
    assert results.results[0].people is None
    assert not results.results[0].tailgating


def test_camera_module_and_tailgating_agree_on_analysis_width() -> None:
    from hardware import tailgating

    assert camera_mod.ANALYSIS_WIDTH == tailgating.ANALYSIS_WIDTH
