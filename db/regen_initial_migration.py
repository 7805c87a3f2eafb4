"""Developer tool: rewrite the initial migration from the models.

Until the first release there is one migration; after a release, add revisions with
`alembic revision --autogenerate` instead and never run this again.
Usage: python -m db.regen_initial_migration
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from db.migrate import MIGRATIONS, alembic_config

INITIAL = MIGRATIONS / "versions" / "0001_initial.py"


def main() -> None:
    INITIAL.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    produced = next((MIGRATIONS / "versions").glob("0001_*.py"))
    produced.rename(INITIAL)
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
