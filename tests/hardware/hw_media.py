"""Generated test media: a camera in tests is a real video file read by OpenCV."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write BGR frames as MJPG .avi; written beside the target, then moved in place."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    partial = path.with_name(path.stem + ".partial.avi")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    partial.replace(path)
    return path


def level_frames(count: int, step: int = 4, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """Frame n is a flat grey of level ``8 + n * step``: its number can be read back."""
    w, h = size
    return [np.full((h, w, 3), 8 + n * step, np.uint8) for n in range(count)]


def frame_number(jpeg: bytes, step: int = 4) -> int:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None, "not a JPEG"
    return round((float(image.mean()) - 8) / step)


def background(width: int = 320, height: int = 240, seed: int = 1) -> np.ndarray:
    """A light, textured, static scene (a corridor wall with some detail)."""
    rng = np.random.default_rng(seed)
    bg = np.full((height, width, 3), 190, np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 30))
        colour = tuple(int(c) for c in rng.integers(140, 230, 3))
        cv2.rectangle(bg, (x, y), (x + 30, y + 20), colour, -1)
    return bg


def crossing_frames(
    walkers: list[tuple[int, int, int]],
    total: int,
    *,
    width: int = 320,
    height: int = 240,
    noise: int = 3,
    seed: int = 2,
) -> list[np.ndarray]:
    """A static scene with dark figures walking left to right.

    Each walker is ``(start_frame, end_frame, centre_y)``: the figure enters at the left
    edge on start_frame and leaves at the right edge on end_frame.
    """
    rng = np.random.default_rng(seed)
    bg = background(width, height)
    fig_w, fig_h = 36, 80
    frames = []
    for i in range(total):
        frame = bg.copy()
        for start, end, cy in walkers:
            if start <= i <= end:
                x = int(-fig_w + (width + fig_w) * (i - start) / max(1, end - start))
                top = cy - fig_h // 2
                cv2.rectangle(frame, (x, top), (x + fig_w, top + fig_h), (40, 35, 30), -1)
                cv2.circle(frame, (x + fig_w // 2, top - 12), 12, (50, 45, 40), -1)
        if noise:
            jitter = rng.integers(-noise, noise + 1, frame.shape, dtype=np.int16)
            frame = np.clip(frame.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames
