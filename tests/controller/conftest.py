"""A running controller on the demo site with simulated readers and GPIO."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.daemon import Controller
from controller.state import Call
from db.engine import session_scope
from db.models import Alarm, Event
from db.types import utcnow
from domain.config import CameraSection, SiteConfig, load_config
from hardware.sim import SimBackend
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, seed_people


@dataclass
class Site:
    cfg: SiteConfig
    ctl: Controller
    backend: SimBackend
    sessions: sessionmaker[Session]
    pin: str

    def tap(self, reader: str, who: str | None = None, card: str | None = None) -> dict[str, Any]:
        """Present a card synchronously (through the loop's own handler)."""
        tech, cid = DEMO_CARDS[who] if who else ("felica", card or "")
        self.ctl.catch_up()  # what the test just wrote has reached the controller's memory
        return self.call(lambda: self.ctl.on_card(_card(reader, tech, cid)))

    def keys(self, reader: str, keys: str) -> dict[str, Any]:
        """Type keys; a PIN is checked in the argon2 worker, so the answer is the newest row
        written at that reader once everything has settled."""
        from readers.events import KeypadInput

        before = self.events()
        last = before[-1].id if before else 0
        answer = self.call(lambda: self.ctl.on_keys(KeypadInput(reader, keys, time.monotonic())))
        if answer.get("decision") != "pending" or answer.get("reason") != "pin_wanted":
            return dict(answer)
        self.settle()
        rows = [e for e in self.events(reader=reader) if e.id > last and e.kind == "presentation"]
        if not rows:
            return dict(answer)
        row = rows[-1]
        return {"decision": row.decision, "reason": row.reason, "event_id": row.id}

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the controller thread (state is owned by it) and return its result."""
        import queue

        box: queue.Queue[Any] = queue.Queue()

        def run() -> None:
            try:
                box.put((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                box.put((False, exc))

        self.ctl.queue.put(Call(run))
        ok, value = box.get(timeout=10)
        if not ok:
            raise value
        self.ctl.sync()  # its rows committed, its strike released
        return value

    def settle(self, seconds: float = 0.0) -> None:
        """Wait, then until the queue is drained and every row written."""
        time.sleep(seconds)
        self.call(lambda: None)
        self.ctl.sync()

    def io(self, name: str) -> Any:
        return (
            self.backend.inputs[name] if name in self.backend.inputs else self.backend.outputs[name]
        )

    def events(self, **where: Any) -> list[Event]:
        with session_scope(self.sessions) as s:
            q = select(Event).order_by(Event.id)
            for k, v in where.items():
                q = q.where(getattr(Event, k) == v)
            return list(s.scalars(q))

    def alarms(self, kind: str | None = None) -> list[Alarm]:
        with session_scope(self.sessions) as s:
            q = select(Alarm).order_by(Alarm.id)
            if kind:
                q = q.where(Alarm.kind == kind)
            return list(s.scalars(q))


def _card(reader: str, tech: str, cid: str) -> Any:
    from readers.events import CardPresented

    return CardPresented(reader, tech, cid, time.monotonic(), datetime.now(UTC))


@pytest.fixture
def site_factory(
    tmp_path: Path, session_factory: sessionmaker[Session], db_url: str
) -> Iterator[Callable[..., Site]]:
    started: list[Controller] = []

    def make(
        cameras: dict[str, CameraSection] | None = None,
        *,
        timezone: str | None = None,
        clock: Callable[[], datetime] | None = None,
        only: str | None = None,
        **door_overrides: Any,
    ) -> Site:
        """``door_overrides`` change every door, or the door ``only`` alone."""
        cfg = load_config(DEMO_SITE, data_dir=tmp_path)
        cfg = replace(cfg, database=replace(cfg.database, url=db_url), cameras=cameras or {})
        if timezone is not None:
            cfg = replace(cfg, site=replace(cfg.site, timezone=timezone))
        if door_overrides:
            doors = {
                k: replace(v, **door_overrides) if only in (None, k) else v
                for k, v in cfg.doors.items()
            }
            cfg = replace(cfg, doors=doors)
        with session_scope(session_factory) as s:
            pin = seed_people(s, cfg)
        backend = SimBackend()
        ctl = Controller(
            cfg, session_factory=session_factory, backend=backend, clock=clock or utcnow
        )
        ctl.start()
        started.append(ctl)
        return Site(cfg, ctl, backend, session_factory, pin)

    yield make
    for ctl in started:
        ctl.stop()


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()
