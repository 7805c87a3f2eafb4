"""Operator password rules (4(3)), shared by the console and the command line.

NIST SP 800-63B 5.1.1.2: length matters most (12 characters at least here), no composition
rules, but refuse what attackers try first: known common passwords, runs and repeats, and
anything built on the user's or the site's name. "Common" is judged on the password as
people stretch it: case is ignored, digits and symbols at the ends are dropped and leetspeak
is undone, so ``P@ssw0rd2024!`` is ``password``. The list (``common_passwords.txt``, package
data) is written out by ``scripts/common_passwords.py``.

The result is a reason code; the web and the CLI turn it into a sentence.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT = 4
# a common word this long at the start or end, with at most this much around it, is the
# password ("mypassword", "dragonfly1" stays allowed only if long enough otherwise)
EMBEDDED_MIN = 6
EMBEDDED_REST = 3

_LEET = str.maketrans(
    {
        "@": "a",
        "4": "a",
        "$": "s",
        "5": "s",
        "0": "o",
        "1": "i",
        "3": "e",
        "7": "t",
        "8": "b",
        "9": "g",
        "!": "i",
        "|": "l",
        "+": "t",
    }
)
_ENDS = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_NOT_ALNUM = re.compile(r"[\W_]+")
# rows of a keyboard and the alphabet: any 5+ run of them, either way, is a walk
_RUNS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm", "01234567890123456789")


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower case."""
    text = files("domain").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def _cores(password: str) -> set[str]:
    """The forms a guesser would try: as typed, without separators, and, when the word is
    most of the password, without the digits and symbols at its ends, leetspeak undone."""
    low = password.casefold()
    forms = {low, _NOT_ALNUM.sub("", low)}
    trimmed = _ENDS.sub("", low)
    # "Password2024!" is "password"; "8371!ai#2093" is not "ai": the word must be most of it
    if len(trimmed) * 2 >= len(password):
        forms |= {
            trimmed,
            _NOT_ALNUM.sub("", trimmed),
            _NOT_ALNUM.sub("", trimmed.translate(_LEET)),
        }
    forms.add(_NOT_ALNUM.sub("", low.translate(_LEET)))
    return {f for f in forms if f}


def _period(text: str) -> str:
    """The shortest block that repeated makes ``text`` ("abcabcabc" -> "abc")."""
    for n in range(1, len(text) // 2 + 1):
        if len(text) % n == 0 and text[:n] * (len(text) // n) == text:
            return text[:n]
    return text


def _is_walk(text: str) -> bool:
    if len(text) < 5:
        return False
    return any(text in run or text in run[::-1] for run in _RUNS)


def password_problem_code(password: str, username: str = "", site_name: str = "") -> str | None:
    """Why ``password`` is refused (a code), or None.

    Codes: ``password_short``, ``password_few_characters``, ``password_contains_name``,
    ``password_contains_site``, ``password_common``, ``password_pattern``.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password_short"
    if len(set(password)) < MIN_DISTINCT:
        return "password_few_characters"
    low = password.casefold()
    compact = _NOT_ALNUM.sub("", low)
    name = username.strip().casefold()
    if len(name) >= 3 and (name in low or _NOT_ALNUM.sub("", name) in compact):
        return "password_contains_name"
    site_parts = {site_name.strip().casefold(), _NOT_ALNUM.sub("", site_name.casefold())}
    site_parts |= {p for p in re.split(r"[\W_]+", site_name.casefold()) if len(p) >= 4}
    site_parts.add("nyutai")
    if any(len(p) >= 4 and (p in low or p in compact) for p in site_parts):
        return "password_contains_site"
    common = common_passwords()
    for core in _cores(password):
        block = _period(core)
        if core in common or block in common:
            return "password_common"
        if len(block) <= 4 or _is_walk(core) or _is_walk(block):
            return "password_pattern"
        # a common word with a little around it: "mypassword", "dragon!!x"
        for n in range(EMBEDDED_MIN, len(core)):
            if len(core) - n <= EMBEDDED_REST and (core[:n] in common or core[-n:] in common):
                return "password_common"
    return None
