"""``sd_notify`` without a library: tell systemd we are ready, alive or stopping.

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named in
``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace (a leading NUL
byte). Outside systemd the variable is unset and ``notify`` does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``, ``"WATCHDOG=1"``, ``"STOPPING=1"``).

    Returns True when it was sent, False when there is no socket to send to or sending
    failed (logged: a missing notification must never stop the daemon).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.warning("sd_notify to %r failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds (how often to send ``WATCHDOG=1``), or None.

    systemd sets ``WATCHDOG_PID`` too; a value meant for another process is ignored.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
