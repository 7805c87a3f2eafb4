"""Rows the database could not take, kept on local disk until it can.

When the database is down the door stays locked and the attempt is still evidence: it is
appended here (one JSON line, fsynced) and written to the hash-chained log, in order, once
the database answers again, even after a controller restart.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class UnsavedJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, fields: dict[str, Any]) -> None:
        line = json.dumps(
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()},
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 0600 even without the process umask (db.files): the lines name cards and people
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def pending(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
                row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
            except (ValueError, KeyError, TypeError):
                # a line cut by a crash mid-write: keep going, say so
                log.error("unreadable line %d in %s skipped", number, self.path)
                continue
            rows.append(row)
        return rows

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def __bool__(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0
