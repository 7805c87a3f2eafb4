"""Every console page against more people than SQLite's bound-parameter limit (32,766).

A page that puts every person id into an ``IN (...)`` list fails here with "too many SQL
variables" (a 500), and a page that lists everyone shows up as a page far larger than the
bound asserted below. The database is built once for the module by the benchmarks' own
generator (bench/scale_data.py), with everyone inside an area at once.

Not here yet: the monthly report page (its builder still lists every person inside at each
day's end; issue 14 keeps that open).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bench.scale_data import generate
from db.engine import make_engine, make_session_factory
from db.models import Operator
from tests.web.conftest import (
    PASSWORD,
    ROLES,
    SECRET_KEY,
    TOTP_SEEDS,
    Auth,
    _password_hash,
    enrol_totp,
)
from web import create_app

PEOPLE = 40_000  # more than SQLite's 32,766 variables
EVENTS = 60_000
END = datetime(2026, 11, 1, tzinfo=UTC)
PAGE_BYTES = 400_000  # a bounded page; listing 40,000 people is several MB


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("scale") / "scale.db"
    url = f"sqlite:///{path}"
    generate(url, people=PEOPLE, events=EVENTS, doors=8, end=END)
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        for role in ROLES:
            s.add(
                Operator(
                    username=role, display_name=role, role=role, password_hash=_password_hash()
                )
            )
        s.flush()
        # administrators and managers sign in with TOTP (Auth.login passes the second step)
        for op in s.scalars(select(Operator).where(Operator.username.in_(TOTP_SEEDS))):
            enrol_totp(s, op.id, TOTP_SEEDS[op.username])
        s.commit()
    engine.dispose()
    # everyone inside at once: the dashboard and the occupancy page must stay bounded
    con = sqlite3.connect(path)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    con.executemany(
        "INSERT INTO presence (person_id, area_id, entered_at) VALUES (?, ?, ?)",
        ((i, i % 8 + 1, now) for i in range(1, PEOPLE + 1)),
    )
    con.commit()
    con.close()
    return url


@pytest.fixture(scope="module")
def big_app(big_db: str) -> Flask:
    return create_app(
        test_config={
            "SECRET_KEY": SECRET_KEY,
            "NYUTAI_DATABASE_URL": big_db,
            "TESTING": False,
        }
    )


@pytest.fixture(scope="module")
def clients(big_app: Flask) -> Iterator[dict[str, FlaskClient]]:
    out = {}
    for role in ("manager", "guard", "administrator", "auditor"):
        c = big_app.test_client()
        resp = Auth(c).login(role, PASSWORD)
        assert resp.status_code in (302, 303), role
        out[role] = c
    yield out


PAGES = [
    ("guard", "/dashboard"),
    ("guard", "/dashboard/live"),
    ("guard", "/visitors/"),
    ("guard", "/visitors/?q=来訪"),
    ("guard", "/occupancy/"),
    ("guard", "/occupancy/?area=3"),
    ("guard", "/alarms/"),
    ("guard", "/incidents/"),
    ("manager", "/people/"),
    ("manager", "/people/?kind=all"),
    ("manager", "/people/?q=佐藤"),
    ("manager", "/people/?q=たなか+"),
    ("manager", "/people/1"),
    ("manager", "/authorizations/"),
    ("manager", "/authorizations/?area=2"),
    ("manager", "/authorizations/?person=7"),
    ("manager", "/review/"),
    ("manager", "/events/"),
    ("manager", "/events/?visitors=1"),
    ("manager", "/events/?person=佐藤"),
    ("manager", "/events/?person=鈴木+"),
    ("manager", "/events/?person=%2342"),
    ("manager", "/events/?area=3&reason=granted"),
    ("manager", "/events/?alarms=1"),
    ("administrator", "/admin/"),
    ("auditor", "/audit/"),
]


@pytest.mark.parametrize(("role", "path"), PAGES)
def test_page_renders_bounded(clients: dict[str, FlaskClient], role: str, path: str) -> None:
    resp = clients[role].get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)[-2000:]
    assert len(resp.get_data()) < PAGE_BYTES, f"{path}: {len(resp.get_data()):,} bytes"


def test_dashboard_counts_everyone_but_lists_few(clients: dict[str, FlaskClient]) -> None:
    html = clients["guard"].get("/dashboard/live").get_data(as_text=True)
    assert f'data-area="area-0">{PEOPLE // 8}<' in html.replace(" ", "")
    assert html.count('class="since"') <= 8 * 10


def test_pages_continue(clients: dict[str, FlaskClient]) -> None:
    """The next page of each long list exists and differs from the first."""
    for path in ("/people/", "/authorizations/", "/occupancy/"):
        c = clients["manager"]
        first = c.get(path).get_data(as_text=True)
        href = first.split('class="next" rel="next" href="')[1].split('"')[0]
        second = c.get(href.replace("&amp;", "&"))
        assert second.status_code == 200
        assert second.get_data(as_text=True) != first


@pytest.mark.parametrize(
    "path",
    [
        "/visitors/escorts.json?area=1&q=",
        "/visitors/escorts.json?area=1&q=佐藤",
        "/visitors/escorts.json?area=1&q=伊 藤",  # spaces ignored (a name start, 2 characters)
        "/visitors/hosts.json?q=たなか",
    ],
)
def test_pickers_answer_a_bounded_search(clients: dict[str, FlaskClient], path: str) -> None:
    data = json.loads(clients["guard"].get(path).get_data(as_text=True))
    assert 0 < len(data["results"]) <= 50 and data["more"] is True
    text = path.split("q=")[1]
    for r in data["results"]:
        assert not text or text.split()[0] in r["label"] or "たなか" in path


def test_escort_search_finds_by_name_part(clients: dict[str, FlaskClient]) -> None:
    data = json.loads(
        clients["guard"].get("/visitors/escorts.json?area=2&q=木 由美").get_data(as_text=True)
    )
    assert data["results"] and all("木 由美" in r["label"] for r in data["results"])
    assert {r["label"].split(" (")[0] for r in data["results"]} <= {"鈴木 由美", "佐々木 由美"}
    assert clients["guard"].get("/visitors/escorts.json?q=x").status_code == 400


def test_api_pages_are_bounded(big_app: Flask, clients: dict[str, FlaskClient]) -> None:
    from web.accounts import create_api_token

    engine = make_engine(big_app.config["NYUTAI_DATABASE_URL"])
    with make_session_factory(engine)() as s:
        op = s.query(Operator).filter_by(username="manager").one()
        _tid, token = create_api_token(s, op, "scale test")
        s.commit()
    engine.dispose()
    c = big_app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    inside = c.get("/api/v1/occupancy", headers=h).get_json()
    assert len(inside["inside"]) == 500 and inside["next"] is not None
    nxt = c.get(f"/api/v1/occupancy?after={inside['next']}", headers=h).get_json()
    assert nxt["inside"][0]["person_id"] != inside["inside"][0]["person_id"]
    events = c.get("/api/v1/events?limit=500&person=佐藤", headers=h).get_json()
    assert len(events["events"]) == 500 and events["next"]
