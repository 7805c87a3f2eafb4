"""Sign-in answers for a real name and an unknown one take about as long (issue 12, defect 4).

    python -m bench.web_login_timing [--rounds 40]

A wrong password for an existing operator and any password for a name that does not exist
both cost one argon2 verification (the unknown name is checked against a dummy hash), so the
time does not tell an outsider which names exist. Each round signs in from a fresh client
address with the throttle emptied (it would otherwise answer 429, the same for both);
the two kinds alternate so background load hits both alike. Also measured: the answer while
throttled (no argon2 at all, again the same for both).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import delete

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import LoginThrottle, Operator
from tests.web.conftest import csrf_from
from web import create_app
from web.accounts import hash_password


def _forget(app: Flask) -> None:
    """Empty the throttle: 20 failures on one name would make every later round a 429."""
    with app.extensions["nyutai_engine"].begin() as conn:
        conn.execute(delete(LoginThrottle))


def _app(root: Path) -> Flask:
    url = f"sqlite:///{root / 'bench.db'}"
    upgrade(url)
    with make_session_factory(make_engine(url)).begin() as s:
        s.add(
            Operator(
                username="manager",
                display_name="M",
                role="manager",
                password_hash=hash_password("bench password long enough"),
            )
        )
    return create_app(test_config={"SECRET_KEY": "bench-" + "k" * 40, "NYUTAI_DATABASE_URL": url})


def _attempt(app: Flask, addr: str, name: str) -> tuple[int, float]:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    token = csrf_from(client.get("/login").get_data(as_text=True))
    start = time.perf_counter()
    resp = client.post(
        "/login", data={"username": name, "password": "wrong guess 12345", "csrf_token": token}
    )
    return resp.status_code, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = _app(Path(tmp))
        times: dict[str, list[float]] = {"manager": [], "no-such-operator": []}
        for i in range(args.rounds):
            _forget(app)
            for name in times:
                status, took = _attempt(app, f"10.{i // 250}.{i % 250}.{len(name)}", name)
                assert status == 401, status
                times[name].append(took)
        _forget(app)
        throttled: dict[str, list[float]] = {name: [] for name in times}
        for name in throttled:
            addr = f"192.0.2.{len(name)}"
            for _ in range(5):
                _attempt(app, addr, name)
            for _ in range(args.rounds):
                status, took = _attempt(app, addr, name)
                assert status == 429, status
                throttled[name].append(took)
    for label, data in (("wrong password / unknown name", times), ("throttled (429)", throttled)):
        print(label)
        for name, ts in data.items():
            ms = [t * 1000 for t in ts]
            print(
                f"  {name:17s} median {statistics.median(ms):7.1f} ms  "
                f"mean {statistics.mean(ms):7.1f} ms  stdev {statistics.pstdev(ms):6.1f} ms"
            )


if __name__ == "__main__":
    main()
