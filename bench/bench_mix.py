"""16 signed-in clients for 20 s on a mix of console pages, over HTTP against waitress.

    python -m bench.bench_mix --url sqlite:////tmp/scale/copy.db [--threads 4,8,16]
        [--clients 16] [--seconds 20]

The console runs in a child process exactly as ``nyutai web`` runs it (waitress, the given
number of threads); each client is a thread here with its own keep-alive connection and
session (auditor accounts made by bench_scale._prepare: they see every page of the mix and
sign in without TOTP). Each client loops over the mix in its own order. Printed per thread
count: requests/s, p50/p95/p99 and errors; the same-run baseline is one client alone
(the pages' own cost without queueing). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from bench.bench_scale import MIX_CLIENTS, PASSWORD, _pct, _prepare

MIX = [
    "/events/",
    "/events/?area=3",
    "/events/?reason=antipassback",
    "/dashboard/live",
    "/occupancy/",
]


def serve(url: str, port: int, threads: int, fd: int | None = None) -> None:
    """The child: the app under waitress, as web/serve.py runs it (``fd``: a listening socket
    shared by several such children, which the kernel hands connections to in turn)."""
    import logging

    from waitress import serve as waitress_serve

    from web import create_app

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" per request

    app = create_app(test_config={"SECRET_KEY": "bench-" + "x" * 40, "NYUTAI_DATABASE_URL": url})
    if fd is not None:
        sock = socket.socket(fileno=fd)
        waitress_serve(app, sockets=[sock], threads=threads, ident="nyutai")
        return
    waitress_serve(app, host="127.0.0.1", port=port, threads=threads, ident="nyutai")


class Client:
    def __init__(self, port: int, username: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        html = self.get("/login")[1]
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        body = f"username={username}&password={PASSWORD.replace(' ', '+')}&csrf_token={token}"
        status, _ = self.request("POST", "/login", body)
        if status != 302:
            raise RuntimeError(f"{username}: sign-in failed ({status})")

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        for h in resp.headers.get_all("Set-Cookie") or []:
            k, _, v = h.split(";")[0].partition("=")
            self.cookies[k.strip()] = v
        return resp.status, data

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)


def run(port: int, clients: int, seconds: float) -> tuple[list[float], int]:
    sessions = [Client(port, f"bench-{i}") for i in range(clients)]
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(c: Client, seed: int) -> None:
        rnd = random.Random(seed)
        mine: list[float] = []
        bad = 0
        while time.monotonic() < stop:
            path = rnd.choice(MIX)
            t0 = time.perf_counter()
            try:
                status, _ = c.get(path)
            except (OSError, http.client.HTTPException):
                status = 0
            mine.append((time.perf_counter() - t0) * 1000)
            bad += status != 200
        with lock:
            times.extend(mine)
            errors[0] += bad

    ts = [threading.Thread(target=work, args=(c, i)) for i, c in enumerate(sessions)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return times, errors[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--threads", default="4,8,16", help="waitress thread counts to try")
    ap.add_argument("--clients", type=int, default=MIX_CLIENTS)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=18431)
    ap.add_argument(
        "--processes", type=int, default=1, help="console processes sharing one socket"
    )
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child
    ap.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # the child's shared socket
    a = ap.parse_args()
    if a.serve:
        serve(a.url, a.port, a.serve, a.fd)
        return
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {a.url}, mix: {', '.join(MIX)}")
    _prepare(a.url)
    for threads in [int(x) for x in a.threads.split(",")]:
        cmd = [sys.executable, "-m", "bench.bench_mix", "--url", a.url, "--port", str(a.port)]
        cmd += ["--serve", str(threads)]
        listener = None
        if a.processes > 1:  # one listening socket, inherited by every child
            listener = socket.create_server(("127.0.0.1", a.port), backlog=128)
            fd = listener.fileno()
            children = [
                subprocess.Popen(cmd + ["--fd", str(fd)], pass_fds=(fd,))
                for _ in range(a.processes)
            ]
        else:
            children = [subprocess.Popen(cmd)]
        try:
            for _ in range(100):  # wait for the port
                try:
                    http.client.HTTPConnection("127.0.0.1", a.port, timeout=1).request("HEAD", "/")
                    break
                except OSError:
                    time.sleep(0.2)
            base, _ = run(a.port, 1, min(5.0, a.seconds))
            times, errors = run(a.port, a.clients, a.seconds)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait()
            if listener is not None:
                listener.close()
        print(
            f"waitress {a.processes} process(es) x threads={threads:2d}: {a.clients} clients "
            f"{len(times) / a.seconds:6.1f} req/s, p50 {statistics.median(times):6.1f} ms, "
            f"p95 {_pct(times, 0.95):6.1f}, p99 {_pct(times, 0.99):6.1f}, errors {errors}"
        )
        print(
            f"  baseline 1 client: p50 {statistics.median(base):6.1f} ms, "
            f"p99 {_pct(base, 0.99):6.1f}, {len(base) / min(5.0, a.seconds):.1f} req/s"
        )


if __name__ == "__main__":
    main()
