"""Checks shared by driver ``validate_params``: each error names the URL and the value."""

from __future__ import annotations

from collections.abc import Iterable

from readers.errors import ReaderConfigError


def check_known(url: str, params: dict[str, str], known: Iterable[str]) -> None:
    """A typo in a parameter name is an error, not a silently ignored option."""
    allowed = set(known)
    for key in params:
        if key not in allowed:
            known_list = ", ".join(sorted(allowed))
            raise ReaderConfigError(
                f"reader URL {url!r}: unknown parameter {key!r} (known: {known_list})"
            )


def int_param(url: str, params: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw, 0)
    except ValueError:
        raise ReaderConfigError(
            f"reader URL {url!r}: {key}={raw!r} is not a whole number"
        ) from None
    if not low <= value <= high:
        raise ReaderConfigError(f"reader URL {url!r}: {key}={value} is outside {low}..{high}")
    return value


def float_param(
    url: str, params: dict[str, str], key: str, default: float, low: float, high: float
) -> float:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ReaderConfigError(f"reader URL {url!r}: {key}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ReaderConfigError(f"reader URL {url!r}: {key}={value} is outside {low}..{high}")
    return value
