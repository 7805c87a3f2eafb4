"""Works the database could not take, kept on the controller's disk until it can.

One JSON line per work (its chained event rows and journalled operations), appended and
fsynced before the work's callback runs: a strike is released only once its row is durable
here or in the database. controller.recorder writes the lines to the database, in order,
when it answers again, even after a restart; a line cut by a crash mid-write is skipped
(its work never had its callback run).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class WorkJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, works: list[dict[str, Any]]) -> None:
        """Append works and fsync once for all of them."""
        data = "".join(json.dumps(w, ensure_ascii=False, default=_default) + "\n" for w in works)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 0600 even without the process umask (db.files): the lines name cards and people
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def works(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                w = json.loads(line)
                if not isinstance(w, dict) or "events" not in w:
                    raise ValueError("not a work")
            except ValueError:
                log.error("unreadable line %d in %s skipped", number, self.path)
                continue
            out.append(w)
        return out

    def pending(self) -> list[dict[str, Any]]:
        """Every event row kept, oldest first."""
        return [r for w in self.works() for r in w["events"]]

    def clear(self) -> None:
        if self.path.exists():
            with self.path.open("w") as f:
                os.fsync(f.fileno())
            self.path.unlink()

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def __bool__(self) -> bool:
        return self.size() > 0


def _default(v: Any) -> Any:
    if isinstance(v, bytes):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    raise TypeError(f"not JSON: {type(v).__name__}")
