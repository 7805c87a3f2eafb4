"""The controller daemon: one thread owns every door; nothing on it waits for the database.

Readers, door inputs, the PIN worker and the command poller only put messages on
``self.queue``; the loop thread alone decides and drives outputs, so no lock guards door
state. It decides from memory (controller.memory, kept current by controller.feed on its own
thread) and hands the rows of each input to the recorder (controller.recorder) as one work;
the strike is released by the work's callback, which runs only after the row is committed
(or, while the database is away, fsynced to the journal).

The parts: controller.doors (strike, contact, REX, held/forced timers), controller.keypad
(PIN and purpose codes, argon2 in a worker), controller.escorts (escort and two-person
rules, pure), controller.supervision (reader, camera, tamper health), controller.recorder
(events, alarms, snapshots, incidents, journal). This module wires them and dispatches each
message through a table.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller import doors, escorts, keypad, memory_cache, remote, supervision
from controller.commands import CommandRunner
from controller.decision import Outcome, Presence, decide, deny
from controller.feed import ChangeFeed
from controller.memory import Snapshot, load_snapshot
from controller.occupancy import Occupancy
from controller.recorder import FinishCommand, RaiseAlarm, Recorder, StoreSnapshot, Work
from controller.sharing import Heartbeat, PresenceSharing
from controller.site import sync_site
from controller.state import (
    WAKE,
    Call,
    CameraStatus,
    DoorRuntime,
    EscortIndex,
    Message,
    PinChecked,
    PinWait,
    Result,
    Stop,
)
from db.controllers import id_range, lock_registrations, register
from db.engine import make_engine, make_session_factory
from db.lockdowns import active_lockdowns
from db.models import CommandState, Direction, OfflineMode
from db.models import Decision as D
from db.types import utcnow
from domain.config import DEFAULT_CONTROLLER_ID, SiteConfig
from domain.reasons import AUDIBLE_ALARMS, AlarmKind, Reason
from hardware import ContactChanged, ExitRequested, TamperChanged, open_backend
from hardware.base import Backend
from hardware.camera import Camera
from hardware.door import AlarmOutputs, DoorHardware, DoorPins
from hardware.sim import SimBackend
from hardware.tailgating import TailgateResult, TailgateWatch
from readers import CardPresented, Feedback, KeypadInput, ReaderOffline, ReaderOnline, ReaderTamper
from readers.base import Reader
from readers.registry import open_reader

log = logging.getLogger(__name__)

LOOP_TICK_SECONDS = 0.05
TAILGATE_WINDOW_SECONDS = 4.0
HEARTBEAT_SECONDS = 5.0
# A thread woken while another runs Python waits for the GIL up to the switch interval
# (5 ms by default): each presentation passes door thread -> writer -> door thread, and the
# feed, command and cache threads run Python in between, so the default showed in the p99.
SWITCH_INTERVAL_SECONDS = 0.0005
# The recorder gives up on a locked SQLite file this soon and journals instead: a strike
# waits for its row's commit, so a web transaction holding the lock must not hold a door.
BUSY_TIMEOUT_MS = 250
# PostgreSQL: a pooled connection is pinged before use only after resting this long (the
# writer's group commits follow each other closely; db.engine.ping_rested)
PING_RESTED_SECONDS = 1.0


def controller_engine(url: str, **kwargs: Any) -> Engine:
    """The controller's engine: SQLite commits durable (FULL) and gives up on a lock soon,
    PostgreSQL connections are pinged only when rested."""
    return make_engine(
        url,
        synchronous_full=True,
        busy_timeout_ms=BUSY_TIMEOUT_MS,
        ping_rested_seconds=PING_RESTED_SECONDS,
        **kwargs,
    )


_heap_frozen = False


def freeze_heap() -> None:
    """Once per process, after the start: what is loaded by then (libraries, the site, the
    decision memory) lives as long as the process. Python's full collections walk every such
    object, stopping every thread for 30-50 ms in the middle of a burst; frozen, they walk
    only what came after (gc.freeze)."""
    global _heap_frozen
    if _heap_frozen:
        return
    gc.collect()
    gc.freeze()
    _heap_frozen = True


class Controller:
    def __init__(
        self,
        cfg: SiteConfig,
        *,
        session_factory: sessionmaker[Session] | None = None,
        backend: Backend | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        controller_id: str | None = None,
    ) -> None:
        # a site file may describe the whole site: this process runs only its own doors
        cfg = cfg.for_controller(controller_id)
        self.cfg = cfg
        self.controller_id = cfg.controller_id
        self.clock = clock
        self.monotonic = monotonic
        if session_factory is None:
            session_factory = make_session_factory(controller_engine(cfg.database_url))
        self.sessions = session_factory
        self.backend = backend or open_backend(cfg.controller.gpio_backend)
        self.queue: queue.Queue[Message] = queue.Queue()
        # after-commit callbacks (strike releases, reader feedback) overtake the inputs still
        # queued: in a burst a committed person must not wait for every later presentation
        self._committed: deque[Callable[[], None]] = deque()
        self._wake_queued = False
        self.occupancy = Occupancy()
        self.readers: dict[str, Reader] = {}
        self.doors: dict[str, DoorRuntime] = {}
        # doors whose crossings of the current input wait for _finish_crossings
        self.crossing_doors: dict[str, DoorRuntime] = {}
        self.escort_index = EscortIndex()  # person -> their recent grants that may escort
        self.alarm_outputs: AlarmOutputs | None = None
        self.cameras: dict[str, Camera] = {}
        self.tailgate_watches: dict[str, TailgateWatch] = {}
        self.commands = CommandRunner(self)
        self.enrolments: dict[str, tuple[int, float]] = {}  # reader -> (command id, deadline)
        # area code -> who/why/since: areas locked down from the console (controller.remote)
        self.lockdowns: dict[str, dict[str, Any]] = {}
        self.recorder = Recorder(
            session_factory,
            cfg.data_path(journal_name(self.controller_id)),
            self._post_after_commit,
            clock=clock,
            monotonic=monotonic,
        )
        self.recorder.controller_id = self.controller_id
        self.facts: Snapshot | None = None  # swapped whole by the feed thread
        self.feed = ChangeFeed(session_factory, self._get_facts, self._put_facts)
        self.cache_seconds = memory_cache.CACHE_SECONDS
        self.cache_writer: memory_cache.CacheWriter | None = None
        # areas spanning controllers: the others' presence changes (controller.sharing)
        self.sharing = PresenceSharing(self)
        self.feed.on_presence = self.sharing.from_feed
        self.feed.areas = self.sharing.areas
        self.heartbeat = Heartbeat(self)
        self.pin_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
        self.pin_checks: set[int] = set()  # tokens of PIN checks not yet answered
        self.reader_states: dict[str, str] = {}  # reader -> online/offline (supervision)
        self.camera_states: dict[str, bool] = {}
        # credential -> (wrong PINs written, until when that wins over memory)
        self.pin_failures: dict[int, tuple[int, float]] = {}
        self._work: Work | None = None
        self._after: list[Callable[[], None]] = []
        self._depth = 0
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self.ready = threading.Event()
        self.handlers: dict[type, Callable[[Any], object]] = {
            CardPresented: self.on_card,
            KeypadInput: self.on_keys,
            PinChecked: lambda m: keypad.pin_checked(self, m),
            ContactChanged: lambda m: doors.on_contact(self, m),
            ExitRequested: lambda m: doors.on_rex(self, m),
            TamperChanged: lambda m: supervision.on_tamper(self, m.door, m.active, None),
            ReaderTamper: lambda m: supervision.on_reader_tamper(self, m),
            ReaderOnline: lambda m: supervision.on_reader_state(self, m),
            ReaderOffline: lambda m: supervision.on_reader_state(self, m),
            CameraStatus: lambda m: supervision.on_camera_status(self, m),
            TailgateResult: lambda m: supervision.on_tailgate_result(self, m),
            Call: lambda m: m.fn(),
        }
        # the legacy name: attempts kept while the database was away (now whole works)
        self.unsaved = self.recorder.journal

    def _import_legacy_journal(self) -> None:
        """Rows an earlier version kept in ``unsaved-events.jsonl`` (unchained field dicts)
        are chained now, behind the head; the file goes once they are committed."""
        import json

        legacy = self.cfg.data_path("unsaved-events.jsonl")
        if not legacy.exists():
            return
        works: list[Work] = []
        for number, line in enumerate(legacy.read_text(encoding="utf-8").splitlines(), 1):
            try:
                fields = json.loads(line)
                fields["occurred_at"] = datetime.fromisoformat(fields["occurred_at"])
            except (ValueError, KeyError, TypeError):
                log.error("unreadable line %d in %s skipped", number, legacy)
                continue
            work = Work()
            self.recorder.draft(work, **fields)
            works.append(work)
        for i, work in enumerate(works):
            last = i == len(works) - 1
            self.recorder.submit(work, (lambda: legacy.unlink(missing_ok=True)) if last else None)
        if not works:
            legacy.unlink(missing_ok=True)
        log.warning("%d rows kept by an earlier version queued for the log", len(works))

    def _get_facts(self) -> Snapshot:
        assert self.facts is not None
        return self.facts

    def _put_facts(self, snap: Snapshot) -> None:
        self.facts = snap  # one reference assignment: the door thread sees old or new, whole

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))
        with self.sessions.begin() as session:
            # one controller at a time brings the shared rows (areas) in line and registers
            lock_registrations(session)
            sync_site(session, self.cfg)
            # claim the doors (DoorClaimed: another running controller has one) in the same
            # transaction: a refused start changes nothing
            number, taken = register(
                session, self.controller_id, list(self.cfg.doors), self.clock()
            )
            identity = memory_cache.ensure_identity(session)
        if taken:
            log.warning("doors taken over from a controller no longer running: %s", taken)
        self.recorder.id_range = id_range(number)
        cache_path = self.cfg.data_path(memory_cache.filename(self.controller_id))
        with self.sessions() as session:
            cached = memory_cache.load(cache_path, identity, memory_cache.feed_range(session))
            self.facts = load_snapshot(session, self.cfg.zone, cached)
            # after the snapshot: a presence change in between comes again through the feed
            # only the areas with a door of ours: the others' presence is not ours to decide
            self.occupancy.load(session, self.sharing.areas())
            self.reader_states, self.camera_states = supervision.load_states(session)
            self.lockdowns = active_lockdowns(session)
        if self.lockdowns:
            log.warning("areas locked down (kept across the restart): %s", sorted(self.lockdowns))
        # the changes made while we were down count before the first presentation
        while self.feed.step():
            pass
        self.cache_writer = memory_cache.CacheWriter(
            self._get_facts,
            cache_path,
            identity,
            interval=self.cache_seconds,
            written=cached[1] if cached is not None else None,
        )
        self.recorder.load_head()
        self._import_legacy_journal()
        log.info(
            "decision facts in memory in %.1f s (%s; %d credentials, %.0f MiB of arrays)",
            time.monotonic() - started,
            "from the local cache" if cached is not None else "read from the database",
            len(self.facts.base.cred_id),
            self.facts.base.nbytes / 2**20,
        )
        for code, dsec in self.cfg.doors.items():
            g = dsec.gpio
            pins = DoorPins(
                strike=g.strike
                if g.strike is not None
                else (f"{code}.strike" if self._sim else None),
                contact=g.contact,
                rex=g.rex,
                tamper=g.tamper,
                strike_active_low=g.strike_active_low,
                contact_active_low=g.contact_active_low,
                rex_active_low=g.rex_active_low,
                tamper_active_low=g.tamper_active_low,
            )
            hw = DoorHardware(code, self.backend, pins, self.queue.put)
            runtime = DoorRuntime(code, hw, has_contact=pins.contact is not None)
            runtime.policy = self.facts.door(code)
            self.doors[code] = runtime
        if self.cfg.alarm_outputs:
            self.alarm_outputs = AlarmOutputs(
                self.backend,
                dict(self.cfg.alarm_outputs),
                active_low=self.cfg.controller.alarm_outputs_active_low,
            )
        for cam_id, csec in self.cfg.cameras.items():
            self.cameras[cam_id] = Camera(
                cam_id,
                csec.url,
                buffer_seconds=max(csec.buffer_seconds, TAILGATE_WINDOW_SECONDS + 2.0),
                on_status=lambda cid, online, reason: self.queue.put(
                    CameraStatus(cid, online, reason)
                ),
            )
            self.tailgate_watches[cam_id] = TailgateWatch(
                self.cameras[cam_id], window_seconds=TAILGATE_WINDOW_SECONDS
            )
        for reader_id, rsec in self.cfg.readers.items():
            reader = open_reader(
                reader_id, rsec.url, self.queue.put, debounce=rsec.debounce_seconds
            )
            self.readers[reader_id] = reader
        freeze_heap()
        self.recorder.start()
        self.feed.start()
        self.cache_writer.start()
        self.commands.start()
        self.heartbeat.start()
        self._thread = threading.Thread(target=self._run, name="controller", daemon=True)
        self._thread.start()
        for camera in self.cameras.values():
            camera.start()
        for reader in self.readers.values():
            reader.start()
        self.ready.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in reverse order: readers first, then the loop (which locks every strike)."""
        for reader in self.readers.values():
            reader.stopping.set()
        for reader in self.readers.values():
            reader.stop(timeout=2.0)
        for watch in self.tailgate_watches.values():
            watch.stop()
        for camera in self.cameras.values():
            camera.stop(timeout=2.0)
        if self._thread is not None and self._thread.is_alive():
            self.queue.put(Stop())
            self._thread.join(timeout)
        self._lock_everything()
        self.heartbeat.stop()
        self.commands.stop()
        self.feed.stop()
        if self.cache_writer is not None:
            self.cache_writer.stop()
        self.recorder.stop(timeout)
        self.pin_pool.shutdown(wait=False, cancel_futures=True)

    def _lock_everything(self) -> None:
        # Fail-secure: every strike de-energized whatever happened before.
        for door in self.doors.values():
            door.hw.close()
        if self.alarm_outputs is not None:
            self.alarm_outputs.close()
        self.backend.close()

    @property
    def _sim(self) -> bool:
        return isinstance(self.backend, SimBackend)

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until every submitted work is written and its callbacks have run (tests,
        tools; never the loop thread itself)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.recorder.wait_idle(max(0.0, deadline - time.monotonic()))
            done = threading.Event()
            self.queue.put(Call(done.set))
            done.wait(max(0.0, deadline - time.monotonic()))
            if self.pin_checks:
                time.sleep(0.005)
                continue
            if self.recorder.idle() and self.queue.empty():
                return

    def catch_up(self, timeout: float = 5.0) -> None:
        """Wait until memory holds every change committed so far (tests and tools: a write
        reaches the doors within the feed's poll interval, not at once)."""
        from sqlalchemy import func, select

        from db.models import Change

        with self.sessions() as s:
            top = int(s.scalar(select(func.max(Change.version))) or 0)
        deadline = time.monotonic() + timeout
        while self.facts is not None and self.facts.version < top:
            if time.monotonic() > deadline:
                raise TimeoutError(f"memory at version {self.facts.version}, database at {top}")
            time.sleep(0.01)

    # --- the loop ----------------------------------------------------------------------------

    def _post_after_commit(self, fn: Callable[[], None]) -> None:
        """The recorder's callback lane (any thread): run ``fn`` on the loop thread before
        the next queued input."""
        self._committed.append(fn)
        if not self._wake_queued:  # one wake-up for a whole batch of callbacks
            self._wake_queued = True
            self.queue.put(WAKE)

    def _run_committed(self) -> None:
        self._wake_queued = False  # cleared before draining: a later post queues a new one
        while self._committed:
            self._dispatch(Call(self._committed.popleft()))

    def _run(self) -> None:
        self._publish_all()
        self.ready.set()
        last_timers = 0.0
        try:
            while True:
                try:
                    msg = self.queue.get(timeout=LOOP_TICK_SECONDS)
                except queue.Empty:
                    msg = None
                self._run_committed()
                if isinstance(msg, Stop):
                    break
                if msg is not None and msg is not WAKE:
                    self._dispatch(msg)
                now = self.monotonic()
                if now - last_timers >= LOOP_TICK_SECONDS:
                    # every tick, not after every message: a burst is not slowed by 64 doors'
                    # timers per presentation
                    last_timers = now
                    self._timers(now)
        finally:
            self._lock_everything()

    def _dispatch(self, msg: Message) -> None:
        handler = self.handlers.get(type(msg))
        if handler is None:
            log.warning("no handler for %s", type(msg).__name__)
            return
        try:
            with self.unit():
                handler(msg)
        except Exception:  # the daemon never dies on input
            log.exception("error while handling %s", type(msg).__name__)

    def _timers(self, now_mono: float) -> None:
        try:
            with self.unit():
                for door in self.doors.values():
                    doors.door_timers(self, door, now_mono)
                if self.enrolments:
                    self.commands.expire_enrolments()
            if now_mono - self._last_heartbeat >= HEARTBEAT_SECONDS:
                self._last_heartbeat = now_mono
                with self.unit():
                    self.status("controller", self.controller_id, "running")
        except SQLAlchemyError:
            log.warning("database unavailable for commands; doors go on", exc_info=True)
        except Exception:
            log.exception("error in controller timers")

    # --- units of work: the rows of one input, written together ---------------------------

    @contextmanager
    def unit(self) -> Iterator[Work]:
        """The work of the input being handled; nested calls share it. At the outer exit the
        passages of doors without a contact are applied (visitors first) and the work is
        submitted; its callbacks run after the commit."""
        if self._work is None:
            self._work, self._after = Work(), []
        self._depth += 1
        ok = False
        try:
            yield self._work
            ok = True
        finally:
            self._depth -= 1
            if self._depth == 0:
                try:
                    if ok:
                        self._finish_crossings()
                        self.sharing.track(self._work)
                finally:
                    work, after = self._work, self._after
                    self._work, self._after = None, []
                if ok and (work.events or work.ops or after):
                    self.recorder.submit(work, _chain_calls(after) if after else None)

    def _finish_crossings(self) -> None:
        if not self.crossing_doors:
            return
        pending, self.crossing_doors = self.crossing_doors, {}
        for runtime in pending.values():
            if runtime.crossing and runtime.policy is not None:
                crossing, runtime.crossing = runtime.crossing, []
                doors.apply_passages(self, runtime.policy, crossing)

    @property
    def work(self) -> Work:
        if self._work is None:
            raise RuntimeError("no unit of work open")
        return self._work

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after.append(fn)

    def event(self, **fields: Any) -> int:
        """Draft an event row in the current work; its id is known at once."""
        return self.recorder.draft(self.work, **fields).id

    def status(self, kind: str, key: str, state: str, **kw: Any) -> None:
        from controller.recorder import Status

        self.work.ops.append(Status(kind, key, state, self.clock(), **kw))

    def raise_alarm(self, kind: AlarmKind, **kw: Any) -> None:
        event_id = kw.pop("event_id", None)
        if event_id is None:
            event_id = self.event(
                kind="alarm",
                decision=D.INFO,
                reason=kind.value,
                door_id=kw.get("door_id"),
                area_id=kw.get("area_id"),
                reader=kw.get("reader"),
                person_id=kw.get("person_id"),
            )
        snap = self.record_snapshot(kw.get("door_id"), self.monotonic(), {"event_id": event_id})
        self.work.ops.append(
            RaiseAlarm(kind.value, self.clock(), event_id, snapshot_event_id=snap, **kw)
        )
        if kind in AUDIBLE_ALARMS and not kw.get("silent") and self.alarm_outputs is not None:
            self.alarm_outputs.set(True)
        log.warning(
            "alarm %s raised (door=%s reader=%s)", kind.value, kw.get("door_id"), kw.get("reader")
        )

    def record_snapshot(self, door_id: int | None, at: float, link: dict[str, Any]) -> int | None:
        """Chain the SHA-256 of the camera frame from the moment ``at`` in an event; the file
        and its row are written by the recorder. A camera offline or without a frame gives
        None at once: no door waits for it."""
        runtime = next(
            (d for d in self.doors.values() if d.policy and d.policy.id == door_id), None
        )
        cam_id = self.cfg.doors[runtime.code].camera if runtime else None
        camera = self.cameras.get(cam_id) if cam_id else None
        if camera is None or runtime is None or runtime.policy is None:
            return None
        frame = camera.snapshot_frame(at)
        if frame is None:
            return None
        import hashlib

        now = self.clock()
        event_id = self.event(
            kind="snapshot",
            decision=D.INFO,
            reason=Reason.SNAPSHOT,
            door_id=door_id,
            area_id=runtime.policy.area.id,
            snapshot_sha256=hashlib.sha256(frame.jpeg).hexdigest(),
            detail=link,
        )
        self.work.ops.append(
            StoreSnapshot(
                self.cfg.data_dir,
                camera.camera_id,
                frame.jpeg,
                now,
                event_id,
                frame.width,
                frame.height,
                self.cfg.controller.snapshot_dir,
            )  # fmt: skip
        )
        return event_id

    def feedback(self, reader_id: str, kind: Feedback) -> None:
        reader = self.readers.get(reader_id)
        if reader is None:
            return
        try:
            reader.feedback(kind)
        except Exception:  # feedback is best effort: the decision is already recorded
            log.exception("feedback to reader %s failed", reader_id)

    def feedback_after(self, reader_id: str, kind: Feedback) -> None:
        self.after_commit(lambda: self.feedback(reader_id, kind))

    def policy(self, runtime: DoorRuntime) -> Any:
        """The door's policy from memory (the feed keeps it current)."""
        assert self.facts is not None
        policy = self.facts.door(runtime.code)
        if policy is None:
            raise LookupError(f"door {runtime.code} is missing from the database")
        runtime.policy = policy
        return policy

    # --- card presentations --------------------------------------------------------------------

    def on_card(self, msg: CardPresented, command_id: int | None = None) -> Result:
        """Handle one presentation; returns a summary (used by ``tap`` commands)."""
        with self.unit():
            return self._on_card(msg)

    def _on_card(self, msg: CardPresented) -> Result:
        enrol = self.enrolments.pop(msg.reader_id, None)
        if enrol is not None and enrol[1] >= self.monotonic():
            self.work.ops.append(
                FinishCommand(
                    enrol[0],
                    CommandState.DONE,
                    {"technology": msg.technology, "card_id": msg.card_id},
                    self.clock(),
                )
            )
            self.feedback_after(msg.reader_id, Feedback.GRANTED)
            return {"enrolled": msg.card_id}
        placed = self.cfg.reader_door(msg.reader_id)
        if placed is None:
            self.event(
                occurred_at=msg.wall,
                kind="presentation",
                reader=msg.reader_id,
                technology=msg.technology,
                raw_card_id=msg.card_id,
                decision=D.DENIED,
                reason=Reason.UNKNOWN_READER,
            )
            self.feedback_after(msg.reader_id, Feedback.DENIED)
            return {"decision": D.DENIED, "reason": Reason.UNKNOWN_READER}
        door_code, direction = placed
        runtime = self.doors[door_code]
        now = self.clock()
        facts = self.facts
        assert facts is not None
        policy = self.policy(runtime)
        card = facts.card(msg.technology, msg.card_id, policy.area.id)
        card = keypad.with_local_pin_count(self, card)
        person_id = card.person.id if card.person else None
        inside = person_id is not None and self.occupancy.inside(person_id, policy.area.id)
        forgiven = person_id is not None and self.occupancy.is_forgiven(person_id, policy.area.id)
        decision = decide(card, policy, Direction(direction), Presence(inside, forgiven), now)
        offline = self.recorder.offline
        if (
            offline
            and decision.outcome is not Outcome.DENY
            and policy.area.offline == OfflineMode.FAIL_SECURE
        ):
            decision = deny(Reason.SYSTEM_UNAVAILABLE)
        base: dict[str, Any] = dict(
            occurred_at=msg.wall,
            kind="presentation",
            door_id=policy.id,
            area_id=policy.area.id,
            reader=msg.reader_id,
            direction=direction,
            person_id=person_id,
            credential_id=card.credential.id if card.credential else None,
            technology=msg.technology,
            raw_card_id=msg.card_id,
            visitor=bool(card.person and card.person.is_visitor),
            visit_id=card.visit.id if card.visit else None,
        )
        if offline:
            base["detail"] = {"offline": True}
        if runtime.pin_wait is not None:
            keypad.end_pin_wait(self, runtime, Reason.PIN_TIMEOUT, policy)
        if decision.outcome is not Outcome.DENY and remote.refuses_entry(
            self, policy.area.code, direction
        ):
            decision = deny(Reason.LOCKDOWN)  # staff too; leaving stays free
        if decision.outcome is Outcome.DENY:
            self.event(decision=D.DENIED, reason=decision.reason, **base)
            self.feedback_after(msg.reader_id, Feedback.DENIED)
            return {"decision": D.DENIED, "reason": decision.reason}
        if decision.outcome is Outcome.NEED_PIN:
            runtime.pin_wait = PinWait(
                card,
                decision,
                msg.reader_id,
                direction,
                self.monotonic() + policy.pin_timeout_seconds,
            )
            self.feedback(msg.reader_id, Feedback.PIN_WANTED)
            return {"decision": D.PENDING, "reason": Reason.PIN_WANTED}
        if decision.outcome is Outcome.NEED_ESCORT:
            return escorts.visitor_needs_escort(self, runtime, policy, card, decision, msg, base)
        return doors.grant(
            self, runtime, policy, doors.Attempt(card, decision, msg.reader_id, direction, base)
        )

    def on_keys(self, msg: KeypadInput) -> Result:
        with self.unit():
            return keypad.on_keys(self, msg)

    def _watch_for_tailgating(self, runtime: DoorRuntime) -> None:
        cam_id = self.cfg.doors[runtime.code].camera
        watch = self.tailgate_watches.get(cam_id) if cam_id else None
        now_mono = self.monotonic()
        runtime.grants_at = [
            t for t in runtime.grants_at if now_mono - t < 2 * TAILGATE_WINDOW_SECONDS
        ]
        runtime.grants_at.append(now_mono)
        if watch is None or now_mono < runtime.watching_until:
            return  # an earlier watch already covers this grant
        runtime.watching_until = now_mono + TAILGATE_WINDOW_SECONDS
        watch.after_grant(runtime.code, now_mono, self.queue.put)

    # --- status ----------------------------------------------------------------------------

    def _publish_all(self) -> None:
        with self.unit():
            self.status("controller", self.controller_id, "running")
            for code, runtime in self.doors.items():
                self.status("door", code, "open" if runtime.hw.is_open else "closed")

    def finish_command(self, command_id: int, state: str, result: dict[str, Any]) -> None:
        self.work.ops.append(FinishCommand(command_id, state, result, self.clock()))


def journal_name(controller_id: str) -> str:
    """The controller's journal file: several controllers may share one data folder."""
    return (
        "journal.jsonl"
        if controller_id == DEFAULT_CONTROLLER_ID
        else f"journal-{controller_id}.jsonl"
    )


def _chain_calls(fns: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for fn in fns:
            try:
                fn()
            except Exception:  # one failed beep must not keep a strike locked
                log.exception("after-commit action failed")

    return run
