"""Count people walking through a door after one grant (tailgating / 共連れ detection).

No people detector is needed (the OpenCV 5.0 wheels have none): the camera looks at the
doorway, a background subtractor (MOG2, started from the median of the clip so that a
person already in view leaves no "ghost") finds what moves, each moving blob is tracked
from frame to frame, and a blob whose centre crosses a virtual line drawn across the
doorway counts as one person. Two people walking through together are two blobs if
they are apart in the picture; a pair pressed together is one blob (a known limit,
docs/camera.md).

``count_people_crossing`` is pure (frames in, a number out). ``TailgateWatch`` is the
piece the controller uses: after a grant it gathers the camera's frames around the grant
on its own thread and reports the count through a callback (which should only ``put()``
on the controller's queue).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

ANALYSIS_WIDTH = 320


@dataclass(frozen=True)
class CrossingSettings:
    """Where the line is and what counts as a person; fractions of the picture size."""

    line: float = 0.5  # position of the line, as a fraction of the width (axis "x")
    axis: Literal["x", "y"] = "x"  # "x": people move left/right across a vertical line
    direction: Literal["any", "forward", "backward"] = "any"  # forward = increasing x/y
    min_area: float = 0.01  # smallest blob, as a fraction of the picture area
    max_jump: float = 0.25  # furthest a blob's centre moves between frames (of the width)
    max_missing: int = 3  # frames a track may go unseen before it is dropped
    warmup_frames: int = 0  # frames that only teach the background, before any tracking
    learning_rate: float = 0.01  # how fast the background absorbs what stops moving
    background_samples: int = 25  # frames whose median is the starting background


@dataclass
class _Track:
    position: float  # centre along the axis, pixels
    other: float  # centre across the axis, pixels
    missing: int = 0
    counted: bool = False


@dataclass
class _Scene:
    settings: CrossingSettings
    subtractor: cv2.BackgroundSubtractor = field(
        default_factory=lambda: cv2.createBackgroundSubtractorMOG2(
            history=200, varThreshold=25, detectShadows=False
        )
    )
    tracks: list[_Track] = field(default_factory=list)


def _prepare(frame: np.ndarray) -> np.ndarray:
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape[:2]
    if width > ANALYSIS_WIDTH:
        size = (ANALYSIS_WIDTH, max(1, round(height * ANALYSIS_WIDTH / width)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(grey, (5, 5), 0)


_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))


def _blobs(mask: np.ndarray, min_pixels: float) -> list[tuple[float, float]]:
    """Centres (x, y) of the moving regions big enough to be a person."""
    mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)[1]
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _OPEN)  # sensor noise
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CLOSE)  # join a body's parts
    count, _labels, stats, centroids = cv2.connectedComponentsWithStats(mask)
    return [
        (float(centroids[i][0]), float(centroids[i][1]))
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_pixels
    ]


def _step(scene: _Scene, blobs: list[tuple[float, float]], line_px: float, jump_px: float) -> int:
    """Match blobs to tracks (nearest first), return how many tracks crossed the line."""
    s = scene.settings
    points = [(x, y) if s.axis == "x" else (y, x) for x, y in blobs]
    pairs = sorted(
        (abs(t.position - p) + abs(t.other - o), ti, pi)
        for ti, t in enumerate(scene.tracks)
        for pi, (p, o) in enumerate(points)
    )
    used_tracks: set[int] = set()
    used_points: set[int] = set()
    crossed = 0
    for distance, ti, pi in pairs:
        if distance > jump_px or ti in used_tracks or pi in used_points:
            continue
        used_tracks.add(ti)
        used_points.add(pi)
        track = scene.tracks[ti]
        before, after = track.position, points[pi][0]
        forward = before < line_px <= after
        backward = after < line_px <= before
        wanted = {"any": forward or backward, "forward": forward, "backward": backward}
        if wanted[s.direction] and not track.counted:
            track.counted = True
            crossed += 1
        track.position, track.other, track.missing = after, points[pi][1], 0
    for ti, track in enumerate(scene.tracks):
        if ti not in used_tracks:
            track.missing += 1
    scene.tracks = [t for t in scene.tracks if t.missing <= s.max_missing]
    scene.tracks += [_Track(p, o) for pi, (p, o) in enumerate(points) if pi not in used_points]
    return crossed


def count_people_crossing(
    frames: Sequence[np.ndarray],
    settings: CrossingSettings | None = None,
    *,
    count_from: int = 0,
) -> int:
    """How many moving figures cross the line in ``frames`` (oldest first).

    Frames before ``count_from`` teach the background and start tracks but their
    crossings are not counted (the controller passes a second of frames from before the
    grant, so the background is known when the door opens).
    """
    s = settings or CrossingSettings()
    scene = _Scene(s)
    greys = [_prepare(frame) for frame in frames]
    if not greys:
        return 0
    scene.subtractor.apply(_starting_background(greys, s.background_samples), learningRate=1.0)
    total = 0
    for index, grey in enumerate(greys):
        mask = scene.subtractor.apply(grey, learningRate=s.learning_rate)
        if index < s.warmup_frames:
            continue
        height, width = grey.shape[:2]
        along = width if s.axis == "x" else height
        blobs = _blobs(mask, s.min_area * width * height)
        crossed = _step(scene, blobs, s.line * along, s.max_jump * width)
        if index >= count_from:
            total += crossed
    return total


def _starting_background(frames: list[np.ndarray], samples: int) -> np.ndarray:
    """The per-pixel median of frames spread over the clip.

    People pass through a doorway, so each pixel shows the empty scene most of the time.
    Starting from this (rather than from the first frame) means a person already in the
    picture when the clip starts does not leave a "ghost" where they stood.
    """
    step = max(1, len(frames) // max(1, samples))
    return np.median(np.stack(frames[::step]), axis=0).astype(np.uint8)


# --- what the controller uses ---------------------------------------------------------------


class FrameSource(Protocol):
    def frames_between(self, start: float, end: float) -> list[tuple[float, np.ndarray]]: ...


@dataclass(frozen=True, slots=True)
class TailgateResult:
    door: str
    granted_at: float  # monotonic time of the grant
    people: int | None  # None: no frames (camera offline), so nothing can be said

    @property
    def tailgating(self) -> bool:
        return self.people is not None and self.people > 1


class TailgateWatch:
    """After a grant, count the people who pass within ``window_seconds``.

    Frames are gathered while the window runs (so the camera's buffer only has to cover
    ``poll_seconds`` + ``context_seconds``), then counted on this watch's own thread.
    """

    poll_seconds = 0.5
    min_frames = 5

    def __init__(
        self,
        camera: FrameSource,
        *,
        window_seconds: float = 4.0,
        context_seconds: float = 1.0,
        settings: CrossingSettings | None = None,
    ) -> None:
        self.camera = camera
        self.window_seconds = window_seconds
        self.context_seconds = context_seconds
        self.settings = settings or CrossingSettings()
        self._stop = threading.Event()

    def after_grant(
        self, door: str, granted_at: float, on_result: Callable[[TailgateResult], None]
    ) -> threading.Thread:
        """Start watching; ``on_result`` is called once, from the watch thread."""
        thread = threading.Thread(
            target=self._watch,
            args=(door, granted_at, on_result),
            name=f"tailgate-{door}",
            daemon=True,
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Abandon running watches (controller shutdown); they report nothing."""
        self._stop.set()

    def _watch(
        self, door: str, granted_at: float, on_result: Callable[[TailgateResult], None]
    ) -> None:
        end = granted_at + self.window_seconds
        collected: list[tuple[float, np.ndarray]] = []
        since = granted_at - self.context_seconds
        while True:
            new = self.camera.frames_between(since, end)
            new = [(t, f) for t, f in new if not collected or t > collected[-1][0]]
            collected += new
            if time.monotonic() >= end:
                break
            if self._stop.wait(min(self.poll_seconds, max(0.0, end - time.monotonic()))):
                return
        try:
            people = self.count(collected, granted_at)
        except Exception:
            log.exception("tailgating count for door %s failed", door)
            people = None
        try:
            on_result(TailgateResult(door, granted_at, people))
        except Exception:
            log.exception("tailgating result handler failed")

    def count(self, frames: list[tuple[float, np.ndarray]], granted_at: float) -> int | None:
        if len(frames) < self.min_frames:
            return None
        count_from = next((i for i, (t, _) in enumerate(frames) if t >= granted_at), len(frames))
        images = [f for _, f in frames]
        return count_people_crossing(images, self.settings, count_from=count_from)
