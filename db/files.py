"""Files nyutai creates are private to the user it runs as.

The database and its WAL/SHM files, the unsaved-events journal, reports, deletion
certificates, backups, keys and camera snapshots carry personal data or secrets. Rather than
trust every writer (SQLite, fpdf, OpenCV, ``open``) to pass a mode, each process sets its
umask once, at its start, so that everything it creates is 0600 and every folder 0700,
whether or not systemd's ``UMask=`` is in force (an operator running ``nyutai report`` from a
shell has umask 022).
"""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077  # files 0600, folders 0700


def keep_files_private() -> None:
    """Set the process umask so that nothing created from now on is readable by others.

    Called where a nyutai process starts: the ``nyutai`` command (every subcommand, the
    controller, the web console and the demo), and the service and server entry points that
    can be started without it. Calling it again changes nothing.
    """
    os.umask(PRIVATE_UMASK)
