"""Fixtures of the hardware tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from hw_media import write_video

VideoWriterFn = Callable[..., Path]


@pytest.fixture
def make_video(tmp_path: Path) -> VideoWriterFn:
    def make(name: str, frames: Iterable[np.ndarray], fps: float = 15.0) -> Path:
        return write_video(tmp_path / name, frames, fps)

    return make
