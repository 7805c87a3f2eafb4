"""A PostgreSQL primary and its streaming-replication standby on loopback, for failover tests.

Both servers belong to the ``postgres`` user when the tests run as root (PostgreSQL refuses
to run as root), live in a fresh folder and are stopped and removed by ``close``. The
standby is made the way docs/failover.md tells an administrator to make it:
``pg_basebackup -R -X stream`` from the primary, then started on its own port. The primary
waits for the standby's flush before a commit returns (``synchronous_standby_names``), so a
commit the controller saw succeed is on the standby when the primary dies.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = path.split("/")[4]
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def why_not() -> str | None:
    """A reason the pair cannot run here, or None."""
    if pg_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the servers"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgPair:
    def __init__(self, *, synchronous: bool = True, commit_timestamps: bool = False) -> None:
        bin_dir = pg_bin()
        assert bin_dir is not None, why_not()
        self.bin = bin_dir
        self.synchronous = synchronous
        self.commit_timestamps = commit_timestamps  # pg_xact_commit_timestamp, for bench/
        self.root = Path(tempfile.mkdtemp(prefix="nyutai-pgpair-"))
        self.primary_dir = self.root / "primary"
        self.standby_dir = self.root / "standby"
        self.primary_port = free_port()
        self.standby_port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres")
        os.chmod(self.root, 0o755)

    # --- running the server programs as their owner ---------------------------------------

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def _ctl(self, data: Path, *args: str, check: bool = True) -> None:
        self.run("pg_ctl", "-D", str(data), *args, check=check)

    def _start(self, data: Path, port: int, log: str) -> None:
        opts = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._ctl(data, "-l", str(self.root / log), "-o", opts, "-w", "start")

    # --- the pair ------------------------------------------------------------------------

    def start(self) -> PgPair:
        self.run("initdb", "-D", str(self.primary_dir), "-A", "trust", "-U", "postgres",
                 "--no-sync")  # fmt: skip
        conf = [
            "wal_level = replica",
            "max_wal_senders = 5",
            "hot_standby = on",
            "wal_keep_size = 64MB",
        ]
        if self.commit_timestamps:
            conf += ["track_commit_timestamp = on"]
        if self.synchronous:
            conf += ["synchronous_standby_names = '*'", "synchronous_commit = on"]
        self._append(self.primary_dir / "postgresql.conf", conf)
        self._append(
            self.primary_dir / "pg_hba.conf",
            ["host replication postgres 127.0.0.1/32 trust"],
        )
        self._start(self.primary_dir, self.primary_port, "primary.log")
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "postgres", "-D", str(self.standby_dir), "-R", "-X", "stream")  # fmt: skip
        # The copy inherits synchronous_standby_names: once promoted it would wait for a
        # standby it does not have and every commit would hang (docs/failover.md says so).
        self._append(self.standby_dir / "postgresql.conf", ["synchronous_standby_names = ''"])
        self._start(self.standby_dir, self.standby_port, "standby.log")
        self._wait_streaming()
        return self

    def _append(self, path: Path, lines: list[str]) -> None:
        # the file belongs to postgres; root may still append to it
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines) + "\n")

    def sql(self, port: int, query: str) -> str:
        out = self.run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-At",
                       "-c", query)  # fmt: skip
        return out.stdout.strip()

    def _wait_streaming(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.CalledProcessError):
                if self.sql(self.primary_port, "SELECT count(*) FROM pg_stat_replication") == "1":
                    return
            time.sleep(0.1)
        raise RuntimeError("the standby did not start streaming from the primary")

    def url(self, database: str = "postgres") -> str:
        """The multi-host URL nyutai is given: both servers, the writable one wins."""
        return (
            f"postgresql+psycopg://postgres@/{database}?host=127.0.0.1:{self.primary_port}"
            f"&host=127.0.0.1:{self.standby_port}&target_session_attrs=read-write"
        )

    def stop_primary(self) -> None:
        """The primary dies as in a power cut: no shutdown checkpoint, clients cut off."""
        self._ctl(self.primary_dir, "-m", "immediate", "stop")

    def stop_standby(self) -> None:
        """The standby goes away: a synchronous primary now waits at every commit."""
        self._ctl(self.standby_dir, "-m", "immediate", "stop")

    def start_standby(self) -> None:
        self._start(self.standby_dir, self.standby_port, "standby.log")
        self._wait_streaming()

    def promote_standby(self) -> None:
        self._ctl(self.standby_dir, "-w", "promote")

    def close(self) -> None:
        for data in (self.primary_dir, self.standby_dir):
            if (data / "postmaster.pid").exists():
                self._ctl(data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
