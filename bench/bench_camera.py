"""Camera figures for docs/camera.md: JPEG encoding, snapshot latency, tailgating cost.

Run from the repository root:  python bench/bench_camera.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.camera import Camera  # noqa: E402
from hardware.tailgating import count_people_crossing  # noqa: E402

FPS = 15.0


def scene(width: int, height: int, t: int, walkers: int = 1) -> np.ndarray:
    """A textured corridor with dark figures walking across; noisy like a sensor."""
    rng = np.random.default_rng(t)
    frame = np.full((height, width, 3), 185, np.uint8)
    for i in range(0, width, width // 8):
        cv2.rectangle(frame, (i, height // 5), (i + width // 16, height // 2), (150, 160, 170), -1)
    cycle = int(3 * FPS)
    for k in range(walkers):
        phase = (t + k * cycle // 2) % cycle
        x = int(-0.1 * width + 1.2 * width * phase / cycle)
        top = height // 4
        cv2.rectangle(frame, (x, top), (x + width // 9, top + height // 2), (40, 35, 30), -1)
    noise = rng.integers(-3, 4, frame.shape, dtype=np.int16)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def report(name: str, samples: list[float], unit: float = 1e3, suffix: str = "ms") -> None:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"{name:<52} median {statistics.median(samples) * unit:8.3f} {suffix}"
        f"   p99 {p99 * unit:8.3f} {suffix}   (n={len(samples)})"
    )


def main() -> None:
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}")
    frame = scene(640, 480, 7)
    report(
        "JPEG encode 640x480 (quality 85)",
        timed(lambda: cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85]), 300),
    )
    big = scene(1920, 1080, 7)
    report(
        "JPEG encode 1920x1080 (quality 85)",
        timed(lambda: cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85]), 50),
    )
    cam = Camera("bench", "unused", buffer_seconds=3.0)
    report(
        "camera thread work per 640x480 frame (JPEG+grey)", timed(lambda: cam._add(0.0, frame), 300)
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (640, 480))
        for t in range(int(4 * FPS)):
            writer.write(scene(640, 480, t))
        writer.release()

        with Camera("bench", str(path), buffer_seconds=3.0) as live:
            while live.snapshot() is None:
                time.sleep(0.01)
            time.sleep(3.2)  # a full buffer: 3 s at 15 fps
            now = time.monotonic()
            report(
                "snapshot(at=...) with a full 3 s buffer, camera live",
                timed(lambda: live.snapshot(at=now - 1.0), 2000),
                1e6,
                "us",
            )
            report("snapshot() newest frame", timed(live.snapshot, 2000), 1e6, "us")

    for width, height in ((320, 240), (640, 480)):
        seconds = 4
        frames = [scene(width, height, t, walkers=2) for t in range(int(seconds * FPS))]
        runs = timed(lambda frames=frames: count_people_crossing(frames), 5)  # type: ignore[misc]
        per_second = [r / seconds for r in runs]
        report(f"tailgating count per second of {width}x{height} @ {FPS:g} fps", per_second)
    print(f"people counted in the 640x480 sample: {count_people_crossing(frames)}")


if __name__ == "__main__":
    main()
