"""Hostile input on every form and filter: no 500, a clear refusal, nothing half-saved.

Table-driven: ``ATTACKS`` lists every POST route (and the GET routes that read query
parameters) with a valid base form and the fields to attack. Each field in turn gets every
value of ``HOSTILE`` (or is left out), logged in with a role that may use the route. For each
request: no 5xx and no stack trace; a refusal (4xx, or a redirect/page carrying an error
flash) leaves every table's row count as it was; afterwards no page shows an HTML payload
unescaped, and no password or PIN typed into a form appears in a page or in the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from db.commands import CommandKind, enqueue
from db.incidents import open_incident_for_alarm
from db.models import Alarm, AuditLog, Event, Operator, Visit
from db.types import utcnow
from tests.web.conftest import (
    PASSWORD,
    TOTP_SEEDS,
    Site,
    csrf_from,
    pass_second_factor,
    seed_site,
)
from web.accounts import create_api_token

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
# secrets typed into forms: they must never come back in a page or a log line
SECRET_PW = "Hostile-Secret-Pw-7x9q!"
SECRET_PIN = "583920"
MISSING = object()  # the field is left out of the form

HOSTILE: list[Any] = [
    MISSING,
    "",
    "x" * 10_000,
    "abc",
    "-1",
    "0",
    str(10**30),
    "1.5",
    "NaN",
    "1e309",
    "²",  # str.isdigit() says yes, int() says no
    "2026-13-45",
    "2026-02-30",
    "31/12/2026",
    "9999-12-31T23:59",
    "bm90LWEtY3Vyc29y!!==_garbage",
    "1700000000000000_" + "9" * 30,  # a cursor whose row id is past 64 bits
    SCRIPT,
    IMG,
    "' OR 1=1 --",
    "a\x00b",
    "\x01\x08\x1b[31m\x7f",
    "\U00020bb7\U0001f600",  # non-BMP: 𠮷😀
]
# routes that verify or hash a password (argon2, ~0.2 s each on purpose) get these
SHORT: list[Any] = [MISSING, "", "x" * 10_000, "abc", SCRIPT, "' OR 1=1 --", "a\x00b", "\U0001f600"]
PAYLOADS = (SCRIPT, IMG, "<img src=x onerror=alert(1)>")
# refusals that are themselves recorded (failures are evidence, not half-saved input)
FAILURE_AUDITS = {
    "login_failed",
    "login_failed_repeated",
    "login_refused_repeated",
    "password_change_failed",
}


@dataclass
class Attack:
    role: str  # a role allowed to use the route ("anonymous" for the login page)
    method: str
    path: str  # may hold {placeholders} filled from the seeded ids
    base: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = ()
    values: list[Any] | None = None  # a shorter list where each request costs an argon2 hash


def _ids(site: Site, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "person": site.tanaka,
        "suzuki": site.suzuki,
        "sato": site.sato,
        "card": site.tanaka_card,
        "auth": site.auth_tanaka,
        "sr": site.server_room,
        "mn": site.mn_door,
        "sr_door": site.sr_door,
        **extra,
    }


ATTACKS: list[Attack] = [
    Attack(
        "anonymous",
        "POST",
        "/login",
        {"username": "victim", "password": "wrong"},
        ("username", "password"),
        SHORT,
    ),
    Attack(
        "guard", "POST", "/language", {"locale": "en", "next": "/dashboard"}, ("locale", "next")
    ),
    Attack("guard", "POST", "/alarms/{alarm}/ack", {"comment": "見た"}, ("comment",)),
    Attack("guard", "POST", "/alarms/{alarm}/clear", {"comment": "済"}, ("comment",)),
    Attack(
        "guard",
        "POST",
        "/visitors/",
        {
            "name": "来訪 一子",
            "name_kana": "らいほう",
            "organization": "株式会社X",
            "id_checked": "1",
            "id_kind": "運転免許証",
            "purpose": "保守",
            "host_id": "{person}",
            "area_id": "{sr}",
            "escort_id": "{person}",
            "expected_from": "{from}",
            "expected_until": "{until}",
            "device_kind_1": "maintenance-laptop",
            "device_serial_1": "SN1",
        },
        (
            "name",
            "purpose",
            "host_id",
            "area_id",
            "escort_id",
            "expected_from",
            "expected_until",
            "device_kind_1",
            "visitor_id",
        ),
    ),
    Attack(
        "guard",
        "POST",
        "/visitors/{visit}/badge",
        {"technology": "felica", "card_id": "AABBCCDDEEFF0011", "label": "B-1"},
        ("technology", "card_id", "label"),
    ),
    Attack("guard", "POST", "/visitors/{visit}/badge/present", {"reader": "sr-in"}, ("reader",)),
    Attack(
        "guard",
        "POST",
        "/visitors/{visit}/signout",
        {"devices_confirmed": "1"},
        ("devices_confirmed",),
    ),
    Attack(
        "guard",
        "POST",
        "/simulator/tap",
        {"reader": "sr-in", "card": "0102030405060708", "technology": "felica"},
        ("reader", "card", "technology"),
    ),
    Attack(
        "guard",
        "POST",
        "/simulator/keys",
        {"reader": "mn-front-in", "keys": SECRET_PIN + "#"},
        ("reader", "keys"),
    ),
    Attack(
        "guard",
        "POST",
        "/simulator/contact",
        {"door": "server-room-door", "open": "1"},
        ("door", "open"),
    ),
    Attack("guard", "POST", "/simulator/rex", {"door": "server-room-door"}, ("door",)),
    Attack(
        "guard",
        "POST",
        "/simulator/tamper",
        {"door": "server-room-door", "active": "1"},
        ("door", "active"),
    ),
    Attack(
        "guard",
        "POST",
        "/occupancy/forgive",
        {"person_id": "{person}", "area_id": "{sr}"},
        ("person_id", "area_id"),
    ),
    Attack("manager", "POST", "/people/{person}/forgive", {"area_id": "{sr}"}, ("area_id",)),
    Attack(
        "manager",
        "POST",
        "/people/new",
        {
            "name": "新人 太郎",
            "name_kana": "しんじん",
            "organization": "本社",
            "employee_no": "E900",
            "email": "a@example.jp",
            "designated": "1",
        },
        ("name", "name_kana", "organization", "employee_no", "email", "designated"),
    ),
    Attack(
        "manager",
        "POST",
        "/people/{person}/edit",
        {"name": "田中 一郎", "employee_no": "E001", "designated": "1"},
        ("name", "employee_no", "email"),
    ),
    Attack("manager", "POST", "/people/{sato}/active", {"active": "1"}, ("active",)),
    Attack(
        "manager",
        "POST",
        "/people/{person}/trainings",
        {"course": "特定個人情報研修", "completed_on": "2026-01-05"},
        ("course", "completed_on"),
    ),
    Attack(
        "manager",
        "POST",
        "/people/{sato}/cards",
        {"technology": "felica", "card_id": "1122334455667788", "label": "S-9"},
        ("technology", "card_id", "label"),
    ),
    Attack("manager", "POST", "/people/{person}/enrol", {"reader": "sr-in"}, ("reader",)),
    Attack(
        "manager",
        "POST",
        "/people/cards/{card}/pin",
        {"pin": SECRET_PIN, "pin_again": SECRET_PIN},
        ("pin", "pin_again"),
    ),
    Attack("manager", "POST", "/people/cards/{card}/state", {"state": "active"}, ("state",)),
    Attack(
        "manager",
        "POST",
        "/authorizations/new",
        {
            "person_id": "{sato}",
            "area_id": "{sr}",
            "valid_from": "2026-04-01",
            "valid_until": "2027-03-31",
            "default_purpose": "保守",
        },
        ("person_id", "area_id", "valid_from", "valid_until", "default_purpose"),
    ),
    Attack("manager", "POST", "/authorizations/{auth}/approve", {}, ()),
    Attack("manager", "POST", "/authorizations/{auth}/revoke", {}, ()),
    Attack(
        "manager",
        "POST",
        "/authorizations/{auth}/edit",
        {"valid_until": "2027-03-31", "default_purpose": "保守", "schedule": "mon-fri 08:00-20:00"},
        ("valid_until", "default_purpose", "schedule"),
    ),
    Attack(
        "manager",
        "POST",
        "/incidents/{incident}/close",
        {"cause": "原因", "prevention": "対策"},
        ("cause", "prevention"),
    ),
    Attack(
        "manager",
        "POST",
        "/review/authorizations/{auth}",
        {"decision": "keep", "finding": "unused_90d", "note": "n"},
        ("decision", "finding", "note"),
    ),
    Attack(
        "manager",
        "POST",
        "/review/people/{sato}",
        {"decision": "keep", "note": "n"},
        ("decision", "note"),
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/operators",
        {"username": "newop", "role": "guard", "password": SECRET_PW, "display_name": "新"},
        ("username", "role", "password", "display_name"),
        SHORT,
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/operators/{victim}",
        {"role": "guard", "active": "1", "display_name": "被"},
        ("role", "active", "display_name"),
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/areas/{sr}",
        {
            "name": "サーバ室",
            "name_en": "Server room",
            "permitted_devices": "maintenance-laptop",
            "antipassback": "off",
            "escort_policy": "any",
            "max_visitors_per_escort": "3",
        },
        (
            "name",
            "name_en",
            "permitted_devices",
            "antipassback",
            "escort_policy",
            "max_visitors_per_escort",
        ),
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/doors/{sr_door}",
        {
            "name": "扉",
            "strike_seconds": "5",
            "held_open_seconds": "30",
            "pin_timeout_seconds": "10",
            "escort_window_seconds": "10",
            "pin_required": "1",
        },
        (
            "name",
            "strike_seconds",
            "held_open_seconds",
            "pin_timeout_seconds",
            "escort_window_seconds",
        ),
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/operators/{victim}/password",
        {"password": SECRET_PW},
        ("password",),
        SHORT,
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/settings",
        {"key": "contract_end", "value": '"2027-03-31"'},
        ("key", "value"),
    ),
    Attack(
        "administrator",
        "POST",
        "/admin/settings",
        {"key": "contract_end", "value": "2027-03-31", "unknown": "1"},
        ("value", "unknown"),
    ),
    # remote door control (issue 13): the reason is shown on /doors/
    Attack("manager", "POST", "/doors/{sr_door}/unlock", {"reason": "搬入"}, ("reason",)),
    Attack("manager", "POST", "/doors/areas/{sr}/lockdown", {"reason": "訓練"}, ("reason",)),
    # four eyes (issue 12): what a request or a rejection saves is shown on /approvals/
    Attack(
        "manager",
        "POST",
        "/approvals/new",
        {"kind": "retention.purge", "log": "events", "before": "2020-01-02", "reason": "理由"},
        ("kind", "log", "before", "reason"),
    ),
    Attack(
        "manager",
        "POST",
        "/approvals/new",
        {"kind": "review.decide", "person_id": "{sato}", "decision": "keep", "reason": "r"},
        ("person_id", "authorization_id", "decision", "reason"),
    ),
    Attack(
        "manager",
        "POST",
        "/authorizations/{auth}/revoke",
        {"confirm": "1", "reason": "異動"},
        ("confirm", "reason"),
    ),
    Attack(
        "manager",
        "POST",
        "/people/cards/{card}/state",
        {"state": "blocked", "reason": "紛失"},
        ("reason",),
    ),
    Attack(
        "auditor",
        "POST",
        "/account",
        {"current": "wrong-" + SECRET_PW, "new": SECRET_PW, "again": SECRET_PW},
        ("current", "new", "again"),
        SHORT,
    ),
    # GET routes with query parameters
    Attack(
        "manager",
        "GET",
        "/events/",
        {},
        (
            "from",
            "to",
            "area",
            "door",
            "person",
            "decision",
            "reason",
            "visitors",
            "after",
            "before",
        ),
    ),
    Attack("manager", "GET", "/events/export.csv", {}, ("from", "area", "door", "person")),
    Attack("manager", "GET", "/reports/monthly", {"month": "2026-04"}, ("month", "area")),
    Attack("manager", "GET", "/reports/monthly.csv", {"month": "2026-04"}, ("month", "area")),
    Attack("guard", "GET", "/visitors/", {}, ("q", "from_person")),
    Attack("manager", "GET", "/people/", {}, ("q", "kind")),
    Attack("manager", "GET", "/authorizations/", {}, ("area", "person")),
    Attack("administrator", "GET", "/audit/", {}, ("action", "username", "after")),
    Attack("guard", "GET", "/incidents/", {}, ("state",)),
    Attack(
        "manager",
        "GET",
        "/api/v1/events",
        {},
        ("limit", "after", "from", "area", "door", "person", "decision"),
    ),
    Attack("guard", "GET", "/api/v1/alarms", {}, ("open",)),
]


def _fill(value: str, ids: dict[str, Any]) -> str:
    return value.format(**ids) if "{" in value and "}" in value else value


def _counts(engine: Engine, tables: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return {t: int(n) for t, n in conn.execute(text(sql))}


def _new_audit_actions(sf: sessionmaker[Session], after_id: int) -> set[str]:
    with sf() as s:
        return set(s.scalars(select(AuditLog.action).where(AuditLog.id > after_id)))


def _max_audit(sf: sessionmaker[Session]) -> int:
    with sf() as s:
        return int(s.scalar(select(func.max(AuditLog.id))) or 0)


def _pop_flashes(client: FlaskClient) -> list[tuple[str, str]]:
    with client.session_transaction() as sess:
        return list(sess.pop("_flashes", []))


def _seed(sf: sessionmaker[Session], site: Site) -> dict[str, Any]:
    now = utcnow()
    with sf() as s:
        from db.eventlog import append_event

        ev = append_event(
            s,
            Event(
                occurred_at=now,
                kind="door_forced",
                door_id=site.sr_door,
                area_id=site.server_room,
                decision="info",
                reason="door_forced",
            ),
        )
        s.flush()
        alarm = Alarm(kind="door_forced", door_id=site.sr_door, raised_at=now, event_id=ev.id)
        s.add(alarm)
        s.flush()
        inc = open_incident_for_alarm(s, alarm, [ev.id], [])
        assert inc is not None
        visit = Visit(
            visitor_id=site.sato,  # a staff id where a visitor is expected
            area_id=site.server_room,
            purpose="点検",
            declared_devices=[{"kind": "maintenance-laptop", "serial": "X"}],
            expected_from=now,
            expected_until=now,
        )
        s.add(visit)
        victim = Operator(username="victim", role="guard", password_hash="x", display_name="v")
        s.add(victim)
        enqueue(s, CommandKind.ENROL, {"reader": "sr-in", "timeout": 30})
        s.flush()
        manager = s.scalar(select(Operator).where(Operator.username == "manager"))
        guard = s.scalar(select(Operator).where(Operator.username == "guard"))
        assert manager is not None and guard is not None
        tokens = {
            "manager": create_api_token(s, manager, "hostile")[1],
            "guard": create_api_token(s, guard, "hostile")[1],
        }
        s.commit()
        local = now.astimezone().strftime("%Y-%m-%dT%H:%M")
        return {
            "alarm": alarm.id,
            "incident": inc.id,
            "visit": visit.id,
            "victim": victim.id,
            "from": local,
            "until": (now.replace(year=now.year + 1)).strftime("%Y-%m-%dT%H:%M"),
            "tokens": tokens,
        }


def _login(client: FlaskClient, role: str) -> str:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    if role != "anonymous":
        resp = client.post(
            "/login", data={"username": role, "password": PASSWORD, "csrf_token": token}
        )
        if role in TOTP_SEEDS:  # administrators and managers give their TOTP code too
            resp = pass_second_factor(client, resp, role, TOTP_SEEDS[role])
        assert resp.status_code == 302, role
        token = csrf_from(client.get("/account").get_data(as_text=True))
    return token


def _send(
    client: FlaskClient, attack: Attack, data: dict[str, str], token: str, tokens: dict[str, str]
) -> Any:
    path = attack.path
    if attack.method == "GET":
        headers = {}
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {tokens[attack.role]}"}
        return client.get(path, query_string=data, headers=headers)
    return client.post(path, data={**data, "csrf_token": token})


def _attack_ids() -> list[str]:
    return [f"{a.method} {a.path}" for a in ATTACKS]


@dataclass
class Env:
    app: Flask
    engine: Engine
    sf: sessionmaker[Session]
    site: Site
    extra: dict[str, Any]
    tables: list[str]
    clients: dict[str, tuple[FlaskClient, str]]


def _make_env(url: str) -> Env:
    """One site for a whole table: one login per role (argon2 is slow on purpose).

    What an attack saved stays for the next ones, so later pages also show earlier payloads.
    """
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    from web import create_app

    upgrade(url)
    engine = make_engine(url)
    sf = make_session_factory(engine)
    with sf() as s:
        site = seed_site(s)
        s.commit()
    extra = _seed(sf, site)
    app = create_app(
        test_config={
            "SECRET_KEY": "test-only-key-" + "x" * 40,
            "NYUTAI_DATABASE_URL": url,
            "NYUTAI_DEMO": True,
            "TESTING": False,  # production error handling: a crash is a 500 page
        }
    )
    clients = {}
    for role in ("guard", "manager", "administrator", "auditor"):
        client = app.test_client()
        clients[role] = (client, _login(client, role))
    return Env(app, engine, sf, site, extra, inspect(engine).get_table_names(), clients)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    built = _make_env(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'nyutai.db'}")
    yield built
    built.engine.dispose()


def _view_pages(env: Env) -> list[str]:
    """Every page that shows what forms saved, read by the roles that may open them."""
    i = env.extra["incident"]
    # the pages that show what the forms write (events, presence and alarms come from the
    # controller, not from a form)
    manager_pages = [
        "/alarms/",
        "/visitors/",
        "/people/",
        f"/people/{env.site.tanaka}",
        f"/people/{env.site.sato}",
        "/authorizations/",
        f"/incidents/{i}",
        "/review/",
        "/approvals/?all=1",
        "/doors/",
    ]
    bodies = []
    for role, pages in (("manager", manager_pages), ("administrator", ["/admin/", "/audit/"])):
        client = env.clients[role][0]
        for page in pages:
            resp = client.get(page)
            assert resp.status_code == 200, (role, page, resp.status_code)
            bodies.append(resp.get_data(as_text=True))
    return bodies


@pytest.mark.parametrize("attack", ATTACKS, ids=_attack_ids())
def test_hostile_values_are_refused_cleanly(
    env: Env, caplog: pytest.LogCaptureFixture, attack: Attack
) -> None:
    caplog.set_level(logging.DEBUG)
    failures = _run(env, attack, HOSTILE if attack.values is None else attack.values, caplog)
    assert not failures, f"{attack.method} {attack.path}:\n" + "\n".join(failures)


def _run(
    env: Env, attack: Attack, values: list[Any], caplog: pytest.LogCaptureFixture
) -> list[str]:
    """Send every value to every field of ``attack``; the problems found, sorted."""
    caplog.clear()
    ids = _ids(env.site, {k: v for k, v in env.extra.items() if isinstance(v, int | str)})
    attack = Attack(attack.role, attack.method, _fill(attack.path, ids), attack.base, attack.fields)
    base = {k: _fill(v, ids) for k, v in attack.base.items()}
    if attack.role == "anonymous":
        client = env.app.test_client()
        token = _login(client, "anonymous")
    else:
        client, token = env.clients[attack.role]
    failures: list[str] = []
    bodies: list[str] = []
    cases: list[tuple[str, Any]] = [("(none)", None)] + [
        (f, v) for f in attack.fields for v in values
    ]
    for name, value in cases:
        data = dict(base)
        if value is MISSING:
            data.pop(name, None)
        elif value is not None:
            data[name] = value
        if attack.method == "POST":  # a GET never writes: skip the bookkeeping
            before, audit_before = _counts(env.engine, env.tables), _max_audit(env.sf)
        resp = _send(client, attack, data, token, env.extra["tokens"])
        body = resp.get_data(as_text=True)
        label = f"{name}={'(missing)' if value is MISSING else repr(value)[:40]}"
        if resp.status_code >= 500 or "Traceback" in body:
            failures.append(f"{label}: {resp.status_code}")
            continue
        flashes = _pop_flashes(client)
        # a wrong login is a 401 with the form again; elsewhere 401/403 means the login was lost
        if attack.role != "anonymous" and resp.status_code in (401, 403):
            failures.append(f"{label}: refused as {resp.status_code} (lost the login?)")
            continue
        refused = resp.status_code >= 400 or any(cat == "error" for cat, _m in flashes)
        is_form = attack.method == "POST" and attack.role != "anonymous"
        if is_form and resp.status_code == 200 and not refused:
            failures.append(f"{label}: a form came back without a message")
        if refused and attack.method == "POST":
            after = _counts(env.engine, env.tables)
            changed = {t for t in before if before[t] != after[t]} - {
                "audit_log",
                "web_sessions",
                "login_throttle",  # failed passwords are counted (issue 12, throttling)
            }
            extra_audit = _new_audit_actions(env.sf, audit_before) - FAILURE_AUDITS
            if changed or extra_audit:
                failures.append(f"{label}: refused but saved {changed or extra_audit}")
        if resp.mimetype == "text/html":  # JSON and CSV are not rendered by a browser
            bodies.append(body)
    # afterwards: the pages that show what was saved never carry a payload unescaped
    if attack.method == "POST":  # a GET saves nothing another page could show
        bodies += _view_pages(env)
    for body in bodies:
        for payload in PAYLOADS:
            if payload in body:
                failures.append(f"unescaped {payload!r} in a page: ...{_around(body, payload)}...")
        for secret in (SECRET_PW, SECRET_PIN):
            if secret in body:
                failures.append(f"secret {secret!r} in a page: ...{_around(body, secret)}...")
    for record in caplog.records:
        line = record.getMessage() + str(record.args or "")
        for secret in (SECRET_PW, SECRET_PIN):
            if secret in line:
                failures.append(f"secret in the log: {line[:200]}")
    return sorted(set(failures))


def _around(body: str, needle: str) -> str:
    i = body.find(needle)
    return re.sub(r"\s+", " ", body[max(0, i - 80) : i + len(needle) + 40])


def test_editing_a_person_to_a_used_employee_number_is_refused(
    auth: Any, site: Site, session_factory: sessionmaker[Session]
) -> None:
    """Before the fix the unique index refused it inside commit: a 500 page."""
    from db.models import Person

    auth.login("manager")
    page = f"/people/{site.tanaka}/edit"
    resp = auth.post(page, {"name": "田中 一郎", "employee_no": "E002"}, page=page)
    assert resp.status_code == 400
    assert "この社員番号は使われています。" in resp.get_data(as_text=True)
    with session_factory() as s:
        tanaka = s.get(Person, site.tanaka)
        assert tanaka is not None and tanaka.employee_no == "E001"


# values a permissive SQLite stores but PostgreSQL refuses or measures differently
PG_VALUES: list[Any] = [
    "x" * 10_000,
    "a\x00b",
    "\x01\x08\x1b[31m\x7f",
    "\U00020bb7\U0001f600",
    "1" * 19,
]


@pytest.mark.postgres
def test_free_text_on_postgresql(caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL refuses NUL in text and checks VARCHAR lengths: every form on a real server."""
    import os
    import secrets

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    pg = os.environ.get("NYUTAI_TEST_PG_URL")
    if not pg:
        pytest.skip("no PostgreSQL server (NYUTAI_TEST_PG_URL unset; scripts/test starts one)")
    name = f"nyutai_hostile_{secrets.token_hex(4)}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = None
    try:
        env = _make_env(make_url(pg).set(database=name).render_as_string(hide_password=False))
        caplog.set_level(logging.DEBUG)
        failures = []
        for attack in ATTACKS:
            if attack.method == "POST" and attack.role != "anonymous":
                found = _run(env, attack, PG_VALUES, caplog)
                failures += [f"{attack.method} {attack.path}: {f}" for f in found]
        assert not failures, "\n".join(failures)
    finally:
        if env is not None:
            env.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_nul_character_is_refused_with_its_reason(
    auth: Any, site: Site, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL cannot store NUL in text: refused up front, named, logged without the value."""
    from db.models import Person

    auth.login("manager")
    caplog.set_level(logging.INFO)
    resp = auth.post(
        "/people/new", {"name": "a\x00b", "email": "ab" + SECRET_PW}, page="/people/new"
    )
    assert resp.status_code == 400
    assert "入力欄にNUL文字が含まれています" in resp.get_data(as_text=True)
    assert "NUL character in field 'name'" in caplog.text and SECRET_PW not in caplog.text
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 3
