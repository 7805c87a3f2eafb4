"""A door camera: one thread reads frames into a short ring buffer of ready JPEGs.

``Camera(camera_id, url)`` reads from a device index (``"0"`` -> /dev/video0), an RTSP or
HTTP URL, or a video file (looped at its own frame rate, which is how the tests and the
demo get a camera). The controller asks for ``snapshot(at=event_time)`` on its door
thread, so that call must never wait for the camera: every frame is JPEG-encoded on the
camera thread when it arrives (about 1 ms at 640x480, see docs/camera.md), and a
snapshot is only a lookup under a lock held for microseconds.

Times are ``time.monotonic()`` seconds, the clock the controller stamps events with.
A frame's time is when it arrived, minus ``latency_seconds`` (set it for network cameras
whose stream lags the scene).

A camera that cannot be opened, or delivers no frame for ``STALL_SECONDS``, is reported
offline through ``on_status(camera_id, False, reason)`` (the controller raises a
``camera_offline`` alarm) and retried with exponential backoff; the first frame after
that reports it online again. ``on_status`` is called on the camera thread and only on
a change.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Named so tests can shrink them (zigpy-znp style).
RETRY_INITIAL_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
STALL_SECONDS = 5.0  # no frame for this long = offline
OPEN_TIMEOUT_MS = 5000  # FFmpeg open/read timeouts for network streams
READ_TIMEOUT_MS = 5000
FAILED_READ_PAUSE_SECONDS = 0.05  # after a failed read, so a dead source does not spin
MAX_SNAPSHOT_SKEW_SECONDS = 1.0  # a frame further than this from the event is not "of" it
ANALYSIS_WIDTH = 320  # tailgating works on small grey frames
DEFAULT_FILE_FPS = 15.0

StatusCallback = Callable[[str, bool, str], None]


def redact_url(url: str) -> str:
    """The URL without its password: RTSP URLs often carry ``user:password@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable camera URL>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    # "user:password@" keeps the user; a lone "token@" may itself be the secret.
    user = parts.username if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if user else f"***@{host}"))


@dataclass(frozen=True, slots=True)
class BufferedFrame:
    time: float  # monotonic seconds
    jpeg: bytes
    small: np.ndarray  # grey, at most ANALYSIS_WIDTH wide, for tailgating
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    time: float  # monotonic time of the frame
    width: int
    height: int


class Camera:
    def __init__(
        self,
        camera_id: str,
        url: str,
        buffer_seconds: float = 3.0,
        on_status: StatusCallback | None = None,
        *,
        jpeg_quality: int = 85,
        latency_seconds: float = 0.0,
    ) -> None:
        if buffer_seconds <= 0:
            raise ValueError("buffer_seconds must be positive")
        self.camera_id = camera_id
        self.url = url
        self.buffer_seconds = buffer_seconds
        self.jpeg_quality = jpeg_quality
        self.latency_seconds = latency_seconds
        self._on_status = on_status
        self._frames: deque[BufferedFrame] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._online: bool | None = None  # None until the first attempt tells us
        self.reason = "not started"

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Camera:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"camera-{self.camera_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Camera:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def online(self) -> bool:
        return bool(self._online)

    # --- what the controller asks ---------------------------------------------------------

    def snapshot(self, at: float | None = None) -> bytes | None:
        """JPEG of the frame nearest to monotonic time ``at`` (default: the newest).

        None when there is no frame within MAX_SNAPSHOT_SKEW_SECONDS of ``at`` (camera
        offline, or ``at`` older than the buffer): no photo beats a photo of another moment.
        """
        shot = self.snapshot_frame(at)
        return shot.jpeg if shot is not None else None

    def snapshot_frame(self, at: float | None = None) -> Snapshot | None:
        """Like ``snapshot`` with the frame's time and size (for the Snapshot row)."""
        target = time.monotonic() if at is None else at
        with self._lock:
            if not self._frames:
                return None
            if at is None:
                best = self._frames[-1]
            else:
                best = min(self._frames, key=lambda f: abs(f.time - target))
        if abs(best.time - target) > MAX_SNAPSHOT_SKEW_SECONDS:
            return None
        return Snapshot(best.jpeg, best.time, best.width, best.height)

    def frames_between(self, start: float, end: float) -> list[tuple[float, np.ndarray]]:
        """Small grey frames with start <= time <= end, oldest first (for tailgating)."""
        with self._lock:
            return [(f.time, f.small) for f in self._frames if start <= f.time <= end]

    # --- the camera thread ----------------------------------------------------------------

    def _set_status(self, online: bool, reason: str) -> None:
        self.reason = reason
        if online == self._online:
            return
        self._online = online
        (log.info if online else log.warning)(
            "camera %s %s: %s", self.camera_id, "online" if online else "offline", reason
        )
        if self._on_status is not None:
            try:
                self._on_status(self.camera_id, online, reason)
            except Exception:
                log.exception("camera status handler failed")

    def _run(self) -> None:
        delay = RETRY_INITIAL_SECONDS
        while not self._stop.is_set():
            cap = self._open()
            if cap is None:
                self._set_status(False, f"cannot open {redact_url(self.url)}")
            else:
                try:
                    got_frames, reason = self._read_frames(cap)
                except Exception as exc:  # a broken decoder must not end the thread
                    log.exception("camera %s failed", self.camera_id)
                    got_frames, reason = False, f"error: {exc}"
                finally:
                    cap.release()
                if self._stop.is_set():
                    return
                if got_frames:
                    delay = RETRY_INITIAL_SECONDS
                self._set_status(False, reason)
            self._stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _open(self) -> cv2.VideoCapture | None:
        source = self.url.strip()
        if source.isdigit():
            cap = cv2.VideoCapture(int(source))
        elif os.path.isfile(source):
            cap = cv2.VideoCapture(source)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                OPEN_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                READ_TIMEOUT_MS,
            ]
            cap = cv2.VideoCapture(source, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _read_frames(self, cap: cv2.VideoCapture) -> tuple[bool, str]:
        """Read until the source fails or we are stopped: (got any frame, why it ended)."""
        is_file = os.path.isfile(self.url.strip())
        fps = cap.get(cv2.CAP_PROP_FPS) if is_file else 0.0
        period = 1.0 / (fps if 1.0 <= fps <= 240.0 else DEFAULT_FILE_FPS)
        got_frames = False
        last_frame = time.monotonic()
        next_due = last_frame
        rewound = False
        while not self._stop.is_set():
            ok, frame = cap.read()
            now = time.monotonic()
            if not ok or frame is None:
                if is_file and not rewound:
                    # End of a file: loop it, as a camera would keep delivering.
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    rewound = True
                    continue
                if now - last_frame > STALL_SECONDS:
                    return got_frames, f"no frames for {STALL_SECONDS:g} s"
                self._stop.wait(FAILED_READ_PAUSE_SECONDS)
                continue
            rewound = False
            last_frame = now
            self._add(now - self.latency_seconds, frame)
            if not got_frames:
                got_frames = True
                self._set_status(True, "frames arriving")
            if is_file:  # a file would be read as fast as the CPU allows: pace it
                next_due += period
                if next_due < now:
                    next_due = now
                self._stop.wait(max(0.0, next_due - time.monotonic()))
        return got_frames, "stopped"

    def _add(self, when: float, frame: np.ndarray) -> None:
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            log.warning("camera %s: JPEG encoding failed", self.camera_id)
            return
        height, width = frame.shape[:2]
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if width > ANALYSIS_WIDTH:
            small_h = max(1, round(height * ANALYSIS_WIDTH / width))
            grey = cv2.resize(grey, (ANALYSIS_WIDTH, small_h), interpolation=cv2.INTER_AREA)
        item = BufferedFrame(when, encoded.tobytes(), grey, width, height)
        with self._lock:
            self._frames.append(item)
            while len(self._frames) > 1 and when - self._frames[0].time > self.buffer_seconds:
                self._frames.popleft()
