"""The lock and pyproject.toml agree, and the check names each way they can disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts.check_lock import problems

ROOT = Path(__file__).resolve().parent.parent
LOCK = """\
flask==3.1.0 \\
    --hash=sha256:00
    # via nyutai (pyproject.toml)
click==8.1.8 \\
    --hash=sha256:00
    # via
    #   nyutai (pyproject.toml)
    #   flask
"""


def _project(*deps: str, extras: dict[str, list[str]] | None = None) -> dict:
    return {"project": {"dependencies": list(deps), "optional-dependencies": extras or {}}}


def test_the_committed_lock_agrees_with_pyproject() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/check_lock.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def test_a_lock_that_fits_has_no_problem() -> None:
    assert problems(_project("Flask>=3.0,<4", "click>=8.1"), LOCK) == []


def test_a_dependency_missing_from_the_lock_is_named() -> None:
    found = problems(_project("Flask>=3.0", "click", extras={"x": ["pyotp>=2.9"]}), LOCK)
    assert found == ["pyotp>=2.9 is not in the lock"]


def test_a_pin_outside_the_range_is_named() -> None:
    assert problems(_project("Flask>=3.2", "click"), LOCK) == ["Flask>=3.2: the lock pins 3.1.0"]


def test_a_dependency_dropped_from_pyproject_is_named() -> None:
    found = problems(_project("Flask"), LOCK)
    assert found == [
        "click is locked as a dependency of nyutai but pyproject.toml no longer asks for it"
    ]


def test_a_requirement_for_another_platform_is_not_asked_of_the_lock() -> None:
    assert problems(_project("Flask", "click", "pywin32; sys_platform == 'win32'"), LOCK) == []
