"""Where a ``next`` parameter may send the browser: same-site paths only.

An open redirect lets a phishing link bounce through the console's trusted name. The check
judges the URL the way a browser will read it (WHATWG URL parsing): tabs and newlines are
dropped anywhere, leading C0 controls and spaces are stripped and ``\\`` counts as ``/``, so
``/\\t/evil.example`` and ``/\\evil.example`` are ``//evil.example``, another site. Rather than
repair such a value, anything with a control character or a backslash is refused (a real
link of ours never has one); a control character would also break the Location header.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/...`` without scheme or host), else None."""
    if not target:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
