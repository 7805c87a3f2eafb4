"""PostgreSQL, the multi-site database: migrations and the controller slice on a real server.

scripts/test starts a throwaway server on loopback and sets NYUTAI_TEST_PG_URL. Without it
the tests skip, except in CI where a missing server is a failure.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text

from controller.daemon import PING_RESTED_SECONDS, Controller, controller_engine
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import include_object, upgrade
from db.models import Base, Event, Presence
from domain.config import load_config
from hardware.sim import SimBackend
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, seed_people

PG_URL = os.environ.get("NYUTAI_TEST_PG_URL")

if not PG_URL:
    if os.environ.get("CI"):
        pytest.fail(
            "NYUTAI_TEST_PG_URL is not set in CI: scripts/test should have started PostgreSQL"
        )
    pytest.skip("no PostgreSQL server (NYUTAI_TEST_PG_URL unset)", allow_module_level=True)

pytestmark = pytest.mark.postgres


def test_migrations_match_models_on_postgresql(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            ),
            Base.metadata,
        )
    engine.dispose()
    assert diff == []


def test_the_slice_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    upgrade(pg_url)
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    cfg = replace(cfg, database=replace(cfg.database, url=pg_url))
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        seed_people(s, cfg)
    backend = SimBackend()
    ctl = Controller(cfg, session_factory=factory, backend=backend)
    ctl.start()
    try:
        import queue
        import time
        from datetime import UTC, datetime

        from controller.state import Call
        from readers.events import CardPresented

        answer: queue.Queue[dict[str, object]] = queue.Queue()
        card = CardPresented(
            "sr-in", "felica", DEMO_CARDS["yamada"][1], time.monotonic(), datetime.now(UTC)
        )
        # on the controller's own thread, which owns door state
        ctl.queue.put(Call(lambda: answer.put(ctl.on_card(card))))
        result = answer.get(timeout=10)
        assert result["decision"] == "granted"
        ctl.sync()  # released once the row is committed
        assert backend.outputs["sr-strike"].is_active
        backend.inputs["sr-contact"].drive(True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with session_scope(factory) as s:
                if s.scalars(select(Presence)).all():
                    break
            time.sleep(0.05)
        with session_scope(factory) as s:
            assert len(s.scalars(select(Presence)).all()) == 1
            ev = s.scalar(select(Event).where(Event.reason == "granted"))
            assert ev is not None and ev.occurred_at.tzinfo is not None and ev.seq == 1
    finally:
        ctl.stop()
        engine.dispose()


def test_four_eyes_and_totp_steps_on_postgresql(pg_url: str) -> None:
    """The conditional updates that make an approval and a TOTP step single-use hold on
    PostgreSQL too (rowcount of UPDATE ... WHERE state = ...)."""
    from db.approvals import (
        Actor,
        ApprovalError,
        decide,
        mark_done,
        request_approval,
        take_for_cli,
    )
    from db.models import ApprovalKind, Operator
    from db.types import utcnow
    from web.totp import accept_step, store_enrolment

    upgrade(pg_url)
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as s:
            for name in ("a", "b"):
                s.add(Operator(username=name, display_name=name, role="manager", password_hash="x"))
        with session_scope(factory) as s:
            a, b = (Actor.of(o) for o in s.scalars(select(Operator).order_by(Operator.id)))
            params = {"log": "events", "before": "2020-01-02"}
            req = request_approval(s, ApprovalKind.PURGE, params, a, "契約終了")
            with pytest.raises(ApprovalError, match="second person"):
                decide(s, req.id, a, True)
            decide(s, req.id, b, True)
            req_id = req.id
        with session_scope(factory) as s:
            took = take_for_cli(s, req_id, ApprovalKind.PURGE, params)
            mark_done(s, took, {"deletion_record": 1})
        with session_scope(factory) as s, pytest.raises(ApprovalError) as exc:
            take_for_cli(s, req_id, ApprovalKind.PURGE, params)
        assert exc.value.code == "used"
        with session_scope(factory) as s:
            store_enrolment(s, a.id, "JBSWY3DPEHPK3PXP", "k" * 40, utcnow())
        with session_scope(factory) as s:
            assert accept_step(s, a.id, 100) is True
            assert accept_step(s, a.id, 100) is False  # a replay
            assert accept_step(s, a.id, 99) is False
            assert accept_step(s, a.id, 101) is True
    finally:
        engine.dispose()


def test_a_read_only_server_is_an_outage_for_the_recorder(pg_url: str, tmp_path: Path) -> None:
    """A server that refuses writes ("cannot execute INSERT in a read-only transaction", what
    a standby not promoted yet answers) sends the rows to the journal and raises
    database_unavailable; once it takes writes again they are written once, chained."""
    import queue
    import time
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, make_url, text

    from controller.state import Call
    from db.models import Alarm
    from db.verify import verify_all
    from readers.events import CardPresented

    upgrade(pg_url)
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    cfg = replace(cfg, database=replace(cfg.database, url=pg_url))
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        seed_people(s, cfg)
    name = make_url(pg_url).database
    admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
            conn.execute(text(f'ALTER DATABASE "{name}" {setting}'))
            # the controller's pooled connections are cut: the new ones get the setting
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": name},
            )

    ctl = Controller(cfg, session_factory=factory, backend=SimBackend())
    ctl.recorder.alarm_after = 0.2
    ctl.start()

    def tap(card: str) -> dict[str, object]:
        answer: queue.Queue[dict[str, object]] = queue.Queue()
        msg = CardPresented("sr-in", "felica", card, time.monotonic(), datetime.now(UTC))
        ctl.queue.put(Call(lambda: answer.put(ctl.on_card(msg))))
        return answer.get(timeout=10)

    def wait(cond: object, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not cond():  # type: ignore[operator]
            assert time.monotonic() < deadline
            time.sleep(0.05)

    cards = [f"DEADBEEF{i:08X}" for i in range(6)]
    try:
        assert tap(cards[0])["decision"] == "denied"
        ctl.sync()
        read_only(True)
        for c in cards[1:4]:
            assert tap(c)["decision"] == "denied"  # decided from memory
            ctl.sync()
        wait(lambda: ctl.recorder.offline and ctl.recorder._alarm_event is not None)
        assert ctl.recorder.journal  # the rows wait on the controller's disk
        read_only(False)
        wait(lambda: not ctl.recorder.offline)
        for c in cards[4:]:
            tap(c)
            ctl.sync()
        wait(lambda: ctl.recorder.idle())
        with session_scope(factory) as s:
            got = s.scalars(
                select(Event.raw_card_id).where(Event.raw_card_id.in_(cards)).order_by(Event.seq)
            ).all()
            alarm = s.scalar(select(Alarm).where(Alarm.kind == "database_unavailable"))
            result = verify_all(s, None)
        assert list(got) == cards  # each once, in order
        assert alarm is not None and alarm.restored_at is not None
        assert result.ok, result.first
    finally:
        ctl.stop()
        read_only(False)
        admin.dispose()
        engine.dispose()


def test_the_controller_pings_only_connections_that_rested(pg_url: str) -> None:
    """The writer checks a connection out for each group commit: one used a moment ago goes
    out unpinged; one that rested past the limit is pinged, and replaced if its server
    side is gone."""
    engine = controller_engine(pg_url, pool_size=1, max_overflow=0)
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]
    pings = 0
    ping = engine.dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        nonlocal pings
        pings += 1
        return ping(dbapi_conn)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:

        def backend() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

        first = backend()
        assert (backend(), pings) == (first, 0)  # at once again: the same, not pinged
        time.sleep(PING_RESTED_SECONDS + 0.2)
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        replaced = backend()  # rested: pinged, found dead, replaced before use
        assert pings == 1 and replaced != first
    finally:
        admin.dispose()
        engine.dispose()
