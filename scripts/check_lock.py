"""Fails when pyproject.toml and requirements.lock.txt disagree (run by scripts/test).

Every requirement of the project (runtime and every extra) must be pinned in the lock at a
version its range allows, and every package the lock says comes from pyproject.toml must
still be asked for there. Checked offline: no resolver, no index. Refresh with scripts/lock.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
MARKER_ENV = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
              "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
              "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def lock_pins(text: str) -> tuple[dict[str, set[str]], set[str]]:
    """The versions pinned per package, and the packages the lock says are direct."""
    pins: dict[str, set[str]] = {}
    direct: set[str] = set()
    current = ""
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins.setdefault(current, set()).add(match.group(2))
        elif current and re.search(r"#\s+(via )?nyutai \(pyproject\.toml\)", line):
            direct.add(current)
    return pins, direct


def problems(pyproject: dict, lock_text: str) -> list[str]:
    project = pyproject["project"]
    wanted = [Requirement(r) for r in project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        wanted += [Requirement(r) for r in extra]
    pins, direct = lock_pins(lock_text)
    found: list[str] = []
    names = set()
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate(MARKER_ENV):
            continue
        name = canonicalize_name(req.name)
        names.add(name)
        versions = pins.get(name)
        if not versions:
            found.append(f"{req} is not in the lock")
        elif not any(req.specifier.contains(v, prereleases=True) for v in versions):
            found.append(f"{req}: the lock pins {', '.join(sorted(versions))}")
    for name in sorted(direct - names):
        found.append(
            f"{name} is locked as a dependency of nyutai but pyproject.toml no longer asks for it"
        )
    return found


def main() -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if not LOCK.exists():
        print(f"{LOCK.name} is missing: run scripts/lock", file=sys.stderr)
        return 1
    found = problems(pyproject, LOCK.read_text(encoding="utf-8"))
    for line in found:
        print(f"lock is stale: {line}", file=sys.stderr)
    if found:
        print("refresh it with scripts/lock and commit it with pyproject.toml", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
