"""One demo per data folder: an exclusive ``fcntl`` lock on ``<data dir>/demo.lock``.

The lock is held by the open file for as long as the process lives, so a crashed demo never
leaves a stale lock behind (the kernel drops it); the file holds the pid for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyRunning(RuntimeError):
    def __init__(self, path: Path, pid: str) -> None:
        super().__init__(f"{path} is locked by a running process (pid {pid or 'unknown'})")
        self.path, self.pid = path, pid


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise AlreadyRunning naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            pid = f.read().strip()[:20]
            f.close()
            raise AlreadyRunning(self.path, pid) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
