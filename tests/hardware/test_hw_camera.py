"""Camera over real OpenCV capture: generated video files and closed network ports."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hw_media import frame_number, level_frames, write_video

import hardware.camera as camera_mod
from hardware.camera import Camera, redact_url

FPS = 20.0


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class StatusLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str]] = []
        self.lock = threading.Lock()

    def __call__(self, camera_id: str, online: bool, reason: str) -> None:
        with self.lock:
            self.calls.append((camera_id, online, reason))

    def states(self) -> list[bool]:
        with self.lock:
            return [online for _, online, _ in self.calls]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camera_mod, "RETRY_INITIAL_SECONDS", 0.1)
    monkeypatch.setattr(camera_mod, "RETRY_MAX_SECONDS", 0.3)
    monkeypatch.setattr(camera_mod, "OPEN_TIMEOUT_MS", 1000)
    monkeypatch.setattr(camera_mod, "READ_TIMEOUT_MS", 1000)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_snapshot_is_the_frame_of_the_moment_asked(tmp_path: Path) -> None:
    video = write_video(tmp_path / "levels.avi", level_frames(60), FPS)  # a 3 s loop
    status = StatusLog()
    with Camera("door-cam", str(video), buffer_seconds=3.0, on_status=status) as cam:
        wait_for(lambda: cam.snapshot() is not None)
        time.sleep(0.3)
        event_time = time.monotonic()
        frame_at_event = frame_number(cam.snapshot() or b"")
        time.sleep(1.0)  # ~20 more frames arrive
        asked = cam.snapshot(at=event_time)
        newest = cam.snapshot()
    assert asked is not None and newest is not None
    # Nearest to the event: the frame showing then, or the one right after it.
    assert (frame_number(asked) - frame_at_event) % 60 in (0, 1)
    # ...and not the newest frame, a second later.
    assert (frame_number(newest) - frame_number(asked)) % 60 >= 15
    assert status.calls[0][:2] == ("door-cam", True)


def test_file_plays_at_its_frame_rate_and_loops(tmp_path: Path) -> None:
    video = write_video(tmp_path / "levels.avi", level_frames(20), FPS)  # a 1 s loop
    with Camera("c", str(video), buffer_seconds=5.0) as cam:
        wait_for(lambda: cam.snapshot() is not None)
        start = time.monotonic()
        time.sleep(1.6)
        frames = cam.frames_between(start, time.monotonic())
    # Paced, not read as fast as possible: about 20 fps over 1.6 s, past the file's end.
    assert 20 <= len(frames) <= 40
    assert [t for t, _ in frames] == sorted(t for t, _ in frames)


def test_snapshot_far_from_any_frame_is_none(tmp_path: Path) -> None:
    video = write_video(tmp_path / "levels.avi", level_frames(20), FPS)
    cam = Camera("c", str(video), buffer_seconds=1.0)
    assert cam.snapshot() is None  # not started: nothing to show
    with cam:
        wait_for(lambda: cam.snapshot() is not None)
        time.sleep(1.5)
        assert cam.snapshot(at=time.monotonic() - 10) is None  # long out of the buffer
        shot = cam.snapshot_frame(at=time.monotonic())
    assert shot is not None and (shot.width, shot.height) == (64, 48)


def test_buffer_keeps_only_buffer_seconds(tmp_path: Path) -> None:
    video = write_video(tmp_path / "levels.avi", level_frames(20), FPS)
    with Camera("c", str(video), buffer_seconds=0.5) as cam:
        time.sleep(1.5)
        frames = cam.frames_between(0, time.monotonic())
    assert frames, "no frames"
    assert frames[-1][0] - frames[0][0] <= 0.5
    assert len(frames) <= 0.5 * FPS + 2


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_unopenable_network_camera_reports_offline_without_its_password(scheme: str) -> None:
    status = StatusLog()
    url = f"{scheme}://admin:s3cret@127.0.0.1:{closed_port()}/stream"
    with Camera("gate", url, on_status=status):
        wait_for(lambda: status.calls, timeout=15)
    camera_id, online, reason = status.calls[0]
    assert (camera_id, online) == ("gate", False)
    assert "cannot open" in reason and "127.0.0.1" in reason
    assert "s3cret" not in reason


def test_offline_then_the_file_appears_then_online(tmp_path: Path) -> None:
    path = tmp_path / "late.avi"
    status = StatusLog()
    with Camera("late", str(path), on_status=status) as cam:
        wait_for(lambda: status.states() == [False])
        time.sleep(0.5)  # several retries, still one offline report
        assert status.states() == [False]
        write_video(path, level_frames(10), FPS)
        wait_for(lambda: status.states() == [False, True])
        assert cam.online
        assert cam.snapshot() is not None


def test_status_handler_errors_do_not_stop_the_camera(tmp_path: Path) -> None:
    video = write_video(tmp_path / "levels.avi", level_frames(10), FPS)

    def broken(camera_id: str, online: bool, reason: str) -> None:
        raise RuntimeError("handler bug")

    with Camera("c", str(video), on_status=broken) as cam:
        wait_for(lambda: cam.snapshot() is not None)
        first = cam.frames_between(0, time.monotonic())
        time.sleep(0.3)
        assert len(cam.frames_between(0, time.monotonic())) > len(first)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:pw@10.0.0.5:554/s1", "rtsp://admin:***@10.0.0.5:554/s1"),
        ("rtsp://10.0.0.5/s1", "rtsp://10.0.0.5/s1"),
        ("http://token@cam/x.mjpg", "http://***@cam/x.mjpg"),
        ("0", "0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


class MjpegServer:
    """An HTTP MJPEG camera (multipart/x-mixed-replace, as many IP cameras serve) that can
    be told to stop sending frames while keeping the connection open."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import cv2
        import numpy as np

        self.sending = threading.Event()
        self.sending.set()
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = 0
                while not outer.closed.is_set():
                    if not outer.sending.is_set():
                        time.sleep(0.02)
                        continue
                    _, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), n % 250, np.uint8))
                    data = jpeg.tobytes()
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    n += 1
                    time.sleep(0.05)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def test_network_camera_that_stops_sending_goes_offline_and_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(camera_mod, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(camera_mod, "MAX_SNAPSHOT_SKEW_SECONDS", 0.5)
    server = MjpegServer()
    status = StatusLog()
    try:
        with Camera("ipcam", server.url, on_status=status) as cam:
            wait_for(lambda: status.states() == [True])
            assert cam.snapshot() is not None
            server.sending.clear()  # the camera hangs: connection open, no frames
            wait_for(lambda: status.states() == [True, False])
            assert "no frames" in status.calls[-1][2]
            assert cam.snapshot() is None  # the last frame is not "now" any more
            server.sending.set()
            wait_for(lambda: status.states() == [True, False, True])
    finally:
        server.close()
