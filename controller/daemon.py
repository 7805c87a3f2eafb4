"""The controller daemon: one thread owns every door and all occupancy state.

Readers, door inputs and the command poller only put messages on ``self.queue``; the loop
thread alone decides, writes rows and drives outputs, so no lock guards door state.
A granted entry's event row is committed before the strike is released: if the commit fails,
the door stays locked and the attempt is kept (in memory) as ``system_unavailable``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller import alarms as alarm_rows
from controller.commands import CommandRunner
from controller.decision import Decision, Outcome, Presence, decide, escort_eligible
from controller.facts import CardFacts, DoorPolicy, load_card, load_door
from controller.journal import UnsavedJournal
from controller.occupancy import Occupancy, Occupant
from controller.site import sync_site
from controller.state import (
    Call,
    CameraStatus,
    DoorRuntime,
    EscortWait,
    Message,
    Passage,
    PinWait,
    RecentEscort,
    Stop,
)
from controller.status import publish
from db.engine import make_engine, make_session_factory, session_scope
from db.eventlog import append_event
from db.incidents import open_incident_for_alarm
from db.models import (
    Command,
    CommandState,
    Credential,
    CredentialState,
    Direction,
    Event,
)
from db.models import (
    Decision as D,
)
from db.snapshots import store_snapshot
from db.types import utcnow
from domain.config import SiteConfig
from domain.pins import check_pin
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
PIN_MAX_KEYS = 12


class Controller:
    def __init__(
        self,
        cfg: SiteConfig,
        *,
        session_factory: sessionmaker[Session] | None = None,
        backend: Backend | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.cfg = cfg
        self.zone = cfg.zone  # the site's zone, handed to each door's policy
        self.clock = clock
        if session_factory is None:
            engine = make_engine(cfg.database_url, synchronous_full=True)
            session_factory = make_session_factory(engine)
        self.sessions = session_factory
        self.backend = backend or open_backend(cfg.controller.gpio_backend)
        self.queue: queue.Queue[Message] = queue.Queue()
        self.occupancy = Occupancy()
        self.readers: dict[str, Reader] = {}
        self.doors: dict[str, DoorRuntime] = {}
        self.alarm_outputs: AlarmOutputs | None = None
        self.cameras: dict[str, Camera] = {}
        self.tailgate_watches: dict[str, TailgateWatch] = {}
        self.commands = CommandRunner(self)
        self.enrolments: dict[str, tuple[int, float]] = {}  # reader -> (command id, deadline)
        # rows that could not be committed (database down), kept on disk until it is back
        self.unsaved = UnsavedJournal(cfg.data_path("unsaved-events.jsonl"))
        self._thread: threading.Thread | None = None
        self._last_poll = 0.0
        self._last_heartbeat = 0.0
        self.ready = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self.sessions.begin() as session:
            sync_site(session, self.cfg)
            self.occupancy.load(session)
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
            self.doors[code] = DoorRuntime(code, hw, has_contact=pins.contact is not None)
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

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        self._publish_all_safe()
        self.ready.set()
        try:
            while True:
                try:
                    msg = self.queue.get(timeout=LOOP_TICK_SECONDS)
                except queue.Empty:
                    msg = None
                if isinstance(msg, Stop):
                    break
                if msg is not None:
                    self._dispatch(msg)
                self._timers(time.monotonic())
        finally:
            self._lock_everything()

    def _dispatch(self, msg: Message) -> None:
        try:
            if isinstance(msg, CardPresented):
                self.on_card(msg)
            elif isinstance(msg, KeypadInput):
                self.on_keys(msg)
            elif isinstance(msg, ContactChanged):
                self.on_contact(msg)
            elif isinstance(msg, ExitRequested):
                self.on_rex(msg)
            elif isinstance(msg, TamperChanged):
                self.on_tamper(msg.door, msg.active, None)
            elif isinstance(msg, ReaderTamper):
                door = self.cfg.reader_door(msg.reader_id)
                self.on_tamper(door[0] if door else None, msg.active, msg.reader_id)
            elif isinstance(msg, ReaderOnline | ReaderOffline):
                self.on_reader_state(msg)
            elif isinstance(msg, CameraStatus):
                self.on_camera_status(msg)
            elif isinstance(msg, TailgateResult):
                self.on_tailgate_result(msg)
            elif isinstance(msg, Call):
                msg.fn()
        except SQLAlchemyError:
            log.exception(
                "database error while handling %s; the door stays locked", type(msg).__name__
            )
            self._deny_unavailable(msg)
        except Exception:  # the daemon never dies on input
            log.exception("error while handling %s", type(msg).__name__)

    def _timers(self, now_mono: float) -> None:
        try:
            for door in self.doors.values():
                self._door_timers(door, now_mono)
            if now_mono - self._last_poll >= self.cfg.controller.command_poll_seconds:
                self._last_poll = now_mono
                self.commands.poll()
            if now_mono - self._last_heartbeat >= HEARTBEAT_SECONDS:
                self._last_heartbeat = now_mono
                self._flush_unsaved()
                with session_scope(self.sessions) as s:
                    publish(s, "controller", "controller", "running", self.clock())
        except SQLAlchemyError:
            log.warning("database unavailable in timers; retrying", exc_info=True)
        except Exception:
            log.exception("error in controller timers")

    # --- writing -----------------------------------------------------------------------------

    def _event(self, session: Session, **fields: Any) -> Event:
        fields.setdefault("occurred_at", self.clock())
        return append_event(session, Event(**fields))

    def _flush_unsaved(self) -> None:
        rows = self.unsaved.pending()
        if not rows:
            return
        with session_scope(self.sessions) as s:
            for fields in rows:
                append_event(s, Event(**fields))
        self.unsaved.clear()
        log.info("wrote %d events kept while the database was unavailable", len(rows))

    def _deny_unavailable(self, msg: Message) -> None:
        if isinstance(msg, CardPresented):
            placed = self.cfg.reader_door(msg.reader_id)
            self.unsaved.add(
                dict(
                    occurred_at=msg.wall,
                    kind="presentation",
                    reader=msg.reader_id,
                    direction=placed[1] if placed else None,
                    technology=msg.technology,
                    raw_card_id=msg.card_id,
                    decision=D.DENIED,
                    reason=Reason.SYSTEM_UNAVAILABLE,
                    detail={"door": placed[0]} if placed else None,
                )
            )
            self._feedback(msg.reader_id, Feedback.DENIED)

    def _raise(self, session: Session, kind: AlarmKind, **kw: Any) -> None:
        event_id = kw.pop("event_id", None)
        if event_id is None:
            ev = self._event(
                session,
                kind="alarm",
                decision=D.INFO,
                reason=kind.value,
                door_id=kw.get("door_id"),
                area_id=kw.get("area_id"),
                reader=kw.get("reader"),
                person_id=kw.get("person_id"),
            )
            event_id = ev.id
        alarm = alarm_rows.raise_alarm(session, kind, self.clock(), event_id=event_id, **kw)
        snap = self._record_snapshot(
            session,
            kw.get("door_id"),
            time.monotonic(),
            {"alarm_id": alarm.id, "event_id": event_id},
        )
        if snap is not None:
            alarm.snapshot_id = snap.id
        self._open_incident(session, alarm, [event_id], [snap.id] if snap else [])
        if kind in AUDIBLE_ALARMS and not kw.get("silent") and self.alarm_outputs is not None:
            self.alarm_outputs.set(True)
        log.warning(
            "alarm %s raised (door=%s reader=%s)", kind.value, kw.get("door_id"), kw.get("reader")
        )

    def _open_incident(
        self, session: Session, alarm: Any, event_ids: list[int], snapshot_ids: list[int]
    ) -> None:
        open_incident_for_alarm(session, alarm, event_ids, snapshot_ids)

    def _record_snapshot(
        self, s: Session, door_id: int | None, at: float, link: dict[str, Any]
    ) -> Any:
        """Store the camera frame from the moment ``at`` and chain its SHA-256 in an event.

        A camera that is offline or has no frame gives None at once: no door waits for it.
        """
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
        snap = store_snapshot(
            s,
            self.cfg.data_dir,
            camera.camera_id,
            frame.jpeg,
            self.clock(),
            width=frame.width,
            height=frame.height,
            subdir=self.cfg.controller.snapshot_dir,  # where the web serves them from
        )
        self._event(
            s,
            kind="snapshot",
            decision=D.INFO,
            reason=Reason.SNAPSHOT,
            door_id=door_id,
            area_id=runtime.policy.area.id,
            snapshot_id=snap.id,
            snapshot_sha256=snap.sha256,
            detail=link,
        )
        return snap

    # --- cameras ---------------------------------------------------------------------------

    def on_camera_status(self, msg: CameraStatus) -> None:
        with session_scope(self.sessions) as s:
            publish(
                s,
                "camera",
                msg.camera_id,
                "online" if msg.online else "offline",
                self.clock(),
                detail=None if msg.online else {"reason": msg.reason[:200]},
            )
            open_alarm = alarm_rows.open_alarm(
                s, AlarmKind.CAMERA_OFFLINE, reader=f"camera:{msg.camera_id}"
            )
            if msg.online and open_alarm is not None:
                alarm_rows.restore_open(
                    s, AlarmKind.CAMERA_OFFLINE, self.clock(), reader=f"camera:{msg.camera_id}"
                )
            elif not msg.online and open_alarm is None:
                self._raise(
                    s,
                    AlarmKind.CAMERA_OFFLINE,
                    reader=f"camera:{msg.camera_id}",
                    detail={"reason": msg.reason[:200]},
                )

    def _watch_for_tailgating(self, runtime: DoorRuntime) -> None:
        cam_id = self.cfg.doors[runtime.code].camera
        watch = self.tailgate_watches.get(cam_id) if cam_id else None
        now_mono = time.monotonic()
        runtime.grants_at = [
            t for t in runtime.grants_at if now_mono - t < 2 * TAILGATE_WINDOW_SECONDS
        ]
        runtime.grants_at.append(now_mono)
        if watch is None or now_mono < runtime.watching_until:
            return  # an earlier watch already covers this grant
        runtime.watching_until = now_mono + TAILGATE_WINDOW_SECONDS
        watch.after_grant(runtime.code, now_mono, self.queue.put)

    def on_tailgate_result(self, msg: TailgateResult) -> None:
        runtime = self.doors.get(msg.door)
        if runtime is None or msg.people is None or runtime.policy is None:
            return
        window_end = msg.granted_at + TAILGATE_WINDOW_SECONDS
        grants = sum(1 for t in runtime.grants_at if msg.granted_at <= t <= window_end)
        if msg.people <= grants:
            return
        with session_scope(self.sessions) as s:
            where = dict(door_id=runtime.policy.id, area_id=runtime.policy.area.id)
            ev = self._event(
                s,
                kind="tailgating",
                decision=D.INFO,
                reason=Reason.TAILGATING,
                detail={"people": msg.people, "grants": grants},
                **where,
            )
            self._raise(
                s,
                AlarmKind.TAILGATING,
                event_id=ev.id,
                detail={"people": msg.people, "grants": grants},
                **where,
            )

    def _feedback(self, reader_id: str, kind: Feedback) -> None:
        reader = self.readers.get(reader_id)
        if reader is None:
            return
        try:
            reader.feedback(kind)
        except Exception:  # feedback is best effort: the decision is already recorded
            log.exception("feedback to reader %s failed", reader_id)

    # --- card presentations --------------------------------------------------------------------

    def on_card(self, msg: CardPresented) -> dict[str, Any]:
        """Handle one presentation; returns a summary (used by ``tap`` commands)."""
        enrol = self.enrolments.pop(msg.reader_id, None)
        if enrol is not None and enrol[1] >= time.monotonic():
            with session_scope(self.sessions) as s:
                cmd = s.get(Command, enrol[0])
                if cmd is not None:
                    cmd.state = CommandState.DONE
                    cmd.processed_at = self.clock()
                    cmd.result = {"technology": msg.technology, "card_id": msg.card_id}
            self._feedback(msg.reader_id, Feedback.GRANTED)
            return {"enrolled": msg.card_id}
        placed = self.cfg.reader_door(msg.reader_id)
        if placed is None:
            with session_scope(self.sessions) as s:
                self._event(
                    s,
                    occurred_at=msg.wall,
                    kind="presentation",
                    reader=msg.reader_id,
                    technology=msg.technology,
                    raw_card_id=msg.card_id,
                    decision=D.DENIED,
                    reason=Reason.UNKNOWN_READER,
                )
            self._feedback(msg.reader_id, Feedback.DENIED)
            return {"decision": D.DENIED, "reason": Reason.UNKNOWN_READER}
        door_code, direction = placed
        runtime = self.doors[door_code]
        now = self.clock()
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            card = load_card(s, msg.technology, msg.card_id, policy.area.id)
            person_id = card.person.id if card.person else None
            inside = person_id is not None and self.occupancy.inside(person_id, policy.area.id)
            forgiven = person_id is not None and self.occupancy.is_forgiven(
                person_id, policy.area.id
            )
            decision = decide(card, policy, Direction(direction), Presence(inside, forgiven), now)
            base = dict(
                occurred_at=msg.wall,
                kind="presentation",
                door_id=policy.id,
                area_id=policy.area.id,
                reader=msg.reader_id,
                direction=direction,
                person_id=card.person.id if card.person else None,
                credential_id=card.credential.id if card.credential else None,
                technology=msg.technology,
                raw_card_id=msg.card_id,
                visitor=bool(card.person and card.person.is_visitor),
                visit_id=card.visit.id if card.visit else None,
            )
            if runtime.pin_wait is not None:
                self._end_pin_wait(s, runtime, Reason.PIN_TIMEOUT, policy)
            if decision.outcome is Outcome.DENY:
                self._event(s, decision=D.DENIED, reason=decision.reason, **base)
                s.commit()
                self._feedback(msg.reader_id, Feedback.DENIED)
                return {"decision": D.DENIED, "reason": decision.reason}
            if decision.outcome is Outcome.NEED_PIN:
                runtime.pin_wait = PinWait(
                    card,
                    decision,
                    msg.reader_id,
                    direction,
                    time.monotonic() + policy.pin_timeout_seconds,
                )
                s.commit()
                self._feedback(msg.reader_id, Feedback.PIN_WANTED)
                return {"decision": D.PENDING, "reason": Reason.PIN_WANTED}
            if decision.outcome is Outcome.NEED_ESCORT:
                return self._visitor_needs_escort(s, runtime, policy, card, decision, msg, base)
            return self._grant(s, runtime, policy, card, decision, msg.reader_id, direction, base)

    def _grant(
        self,
        s: Session,
        runtime: DoorRuntime,
        policy: DoorPolicy,
        card: CardFacts,
        decision: Decision,
        reader: str,
        direction: str,
        base: dict[str, Any],
        *,
        escort: RecentEscort | None = None,
        reason: Reason | None = None,
        detail: dict[str, Any] | None = None,
        second_person_present: bool = False,
        purpose_given: bool = False,
    ) -> dict[str, Any]:
        """Commit the granted row, then release the strike (never the other way round).

        At doors that ask for a purpose, staff type a purpose code first. Under the two-person
        rule the first entrant into an empty area waits for a second one.
        """
        assert card.person is not None
        if (
            policy.ask_purpose
            and not purpose_given
            and direction == Direction.IN
            and not card.person.is_visitor
        ):
            runtime.pin_wait = PinWait(
                card,
                decision,
                reader,
                direction,
                time.monotonic() + policy.pin_timeout_seconds,
                purpose=True,
            )
            s.commit()
            self._feedback(reader, Feedback.PIN_WANTED)
            return {"decision": D.PENDING, "reason": Reason.PURPOSE_WANTED}
        if not second_person_present and self._needs_second_person(policy, card, direction):
            first = runtime.first_of_two
            now_mono = time.monotonic()
            if (
                first is None
                or now_mono - first.since > policy.escort_window_seconds
                or (first.card.person is not None and first.card.person.id == card.person.id)
            ):
                ev = self._event(s, decision=D.PENDING, reason=Reason.SECOND_PERSON_WANTED, **base)
                s.commit()
                runtime.first_of_two = EscortWait(
                    card, decision, reader, direction, now_mono, ev.id
                )
                self._feedback(reader, Feedback.WAIT)
                return {
                    "decision": D.PENDING,
                    "reason": Reason.SECOND_PERSON_WANTED,
                    "event_id": ev.id,
                }
            runtime.first_of_two = None
            self._grant(
                s,
                runtime,
                policy,
                first.card,
                first.decision,
                first.reader,
                first.direction,
                self._base_for(policy, first),
                detail={"waited_event_id": first.event_id},
                second_person_present=True,
            )
        ev = self._event(
            s,
            decision=D.GRANTED,
            reason=reason or decision.reason,
            purpose=decision.purpose if direction == Direction.IN else None,
            escort_person_id=escort.card.person.id if escort and escort.card.person else None,
            escort_event_id=escort.event_id if escort else None,
            detail=detail,
            **base,
        )
        passage = Passage(
            person_id=card.person.id,
            area_id=policy.area.id,
            direction=direction,
            event_id=ev.id,
            visitor=card.person.is_visitor,
            escort_person_id=escort.card.person.id if escort and escort.card.person else None,
            visit_id=card.visit.id if card.visit else None,
        )
        if not runtime.has_contact:
            # No door contact fitted: nothing can confirm the passage, so the grant counts.
            self._apply_passages(s, policy, [passage])
        s.commit()
        if runtime.has_contact:
            runtime.passages.append(passage)
        self._release(runtime, policy.strike_seconds)
        self._feedback(reader, Feedback.GRANTED)
        if direction == Direction.IN:
            self._watch_for_tailgating(runtime)
            if policy.snapshot_on_entry:
                # after the release, so no door waits for a camera
                self._record_snapshot(s, policy.id, time.monotonic(), {"event_id": ev.id})
                s.commit()
        if not card.person.is_visitor:
            runtime.recent_escorts.append(
                RecentEscort(card, decision, direction, time.monotonic(), ev.id)
            )
            self._escort_arrived(s, runtime, policy, runtime.recent_escorts[-1])
        return {"decision": D.GRANTED, "reason": reason or decision.reason, "event_id": ev.id}

    def _needs_second_person(self, policy: DoorPolicy, card: CardFacts, direction: str) -> bool:
        if not policy.area.two_person_rule or direction != Direction.IN:
            return False
        if card.person is None or card.person.is_visitor:
            return False
        pending = any(
            p.area_id == policy.area.id and p.direction == Direction.IN and not p.visitor
            for d in self.doors.values()
            for p in d.passages
        )
        return self.occupancy.staff_count(policy.area.id) == 0 and not pending

    def _release(self, runtime: DoorRuntime, seconds: float) -> None:
        runtime.released_until = time.monotonic() + seconds
        runtime.opened_during_release = runtime.hw.is_open
        runtime.hw.release()

    # --- escorts (立会い) ------------------------------------------------------------------------

    def _visitor_needs_escort(
        self,
        s: Session,
        runtime: DoorRuntime,
        policy: DoorPolicy,
        card: CardFacts,
        decision: Decision,
        msg: CardPresented,
        base: dict[str, Any],
    ) -> dict[str, Any]:
        now_mono = time.monotonic()
        for recent in reversed(runtime.recent_escorts):
            if (
                now_mono - recent.at > policy.escort_window_seconds
                or recent.direction != base["direction"]
            ):
                continue
            if escort_eligible(recent.card, recent.decision, card, policy):
                refusal = self._escort_limit(policy, recent, base["direction"])
                if refusal is not None:
                    self._event(s, decision=D.DENIED, reason=refusal, **base)
                    s.commit()
                    self._feedback(msg.reader_id, Feedback.DENIED)
                    return {"decision": D.DENIED, "reason": refusal}
                return self._grant(
                    s,
                    runtime,
                    policy,
                    card,
                    decision,
                    msg.reader_id,
                    base["direction"],
                    base,
                    escort=recent,
                    reason=Reason.GRANTED_ESCORTED,
                )
        ev = self._event(s, decision=D.PENDING, reason=Reason.ESCORT_WANTED, **base)
        s.commit()
        runtime.escort_waits.append(
            EscortWait(card, decision, msg.reader_id, base["direction"], now_mono, ev.id)
        )
        self._feedback(msg.reader_id, Feedback.WAIT)
        return {"decision": D.PENDING, "reason": Reason.ESCORT_WANTED, "event_id": ev.id}

    def _escort_limit(
        self, policy: DoorPolicy, escort: RecentEscort, direction: str
    ) -> Reason | None:
        if direction != Direction.IN or escort.card.person is None:
            return None
        already = len(self.occupancy.visitors_escorted_by(escort.card.person.id, policy.area.id))
        pending = sum(
            1
            for d in self.doors.values()
            for p in d.passages
            if p.visitor
            and p.escort_person_id == escort.card.person.id
            and p.direction == Direction.IN
        )
        if already + pending >= policy.area.max_visitors_per_escort:
            return Reason.ESCORT_LIMIT
        return None

    def _escort_arrived(
        self, s: Session, runtime: DoorRuntime, policy: DoorPolicy, escort: RecentEscort
    ) -> None:
        """A staff grant: let in the visitors waiting at this door that this person may escort."""
        now_mono = time.monotonic()
        for wait in list(runtime.escort_waits):
            if (
                now_mono - wait.since > policy.escort_window_seconds
                or wait.direction != escort.direction
            ):
                continue
            if not escort_eligible(escort.card, escort.decision, wait.card, policy):
                wait.refused_by = escort.card.person.id if escort.card.person else None
                continue
            runtime.escort_waits.remove(wait)
            assert wait.card.person is not None
            base = self._base_for(policy, wait)
            refusal = self._escort_limit(policy, escort, wait.direction)
            if refusal is not None:
                self._event(s, decision=D.DENIED, reason=refusal, **base)
                s.commit()
                self._feedback(wait.reader, Feedback.DENIED)
                continue
            self._grant(
                s,
                runtime,
                policy,
                wait.card,
                wait.decision,
                wait.reader,
                wait.direction,
                base,
                escort=escort,
                reason=Reason.GRANTED_ESCORTED,
                detail={"waited_event_id": wait.event_id},
            )

    def _base_for(self, policy: DoorPolicy, wait: EscortWait | PinWait) -> dict[str, Any]:
        card = wait.card
        return dict(
            kind="presentation",
            door_id=policy.id,
            area_id=policy.area.id,
            reader=wait.reader,
            direction=wait.direction,
            person_id=card.person.id if card.person else None,
            credential_id=card.credential.id if card.credential else None,
            technology=card.credential.technology if card.credential else None,
            raw_card_id=card.credential.card_id if card.credential else None,
            visitor=bool(card.person and card.person.is_visitor),
            visit_id=card.visit.id if card.visit else None,
        )

    # --- PIN (4(3)) ----------------------------------------------------------------------------

    def on_keys(self, msg: KeypadInput) -> dict[str, Any]:
        placed = self.cfg.reader_door(msg.reader_id)
        if placed is None:
            return {"ignored": "unknown_reader"}
        runtime = self.doors[placed[0]]
        wait = runtime.pin_wait
        for key in msg.keys:
            self._feedback(msg.reader_id, Feedback.KEY)  # identical for every key
            if wait is None or wait.reader != msg.reader_id:
                continue
            if key == "*":
                wait.keys = ""
            elif key == "#" or (key.isdigit() and len(wait.keys) + 1 >= PIN_MAX_KEYS):
                if key.isdigit():
                    wait.keys += key
                if wait.purpose:
                    return self._purpose_entered(runtime, wait)
                return self._pin_entered(runtime, wait)
            elif key.isdigit() and key.isascii():
                wait.keys += key
        return {"decision": D.PENDING if wait else None}

    def _pin_entered(self, runtime: DoorRuntime, wait: PinWait) -> dict[str, Any]:
        runtime.pin_wait = None
        cred = wait.card.credential
        assert cred is not None and cred.pin_hash is not None
        result = check_pin(cred.pin_hash, wait.keys)
        wait.keys = ""
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            base = self._base_for(policy, wait)
            row = s.get(Credential, cred.id)
            assert row is not None
            if result == "wrong":
                row.failed_pin_count += 1
                locked = row.failed_pin_count >= self.cfg.controller.pin_max_attempts
                reason = Reason.PIN_LOCKOUT if locked else Reason.PIN_WRONG
                ev = self._event(
                    s,
                    decision=D.DENIED,
                    reason=reason,
                    detail={"failed_pins": row.failed_pin_count},
                    **base,
                )
                if locked:
                    row.state = CredentialState.LOCKED
                    self._raise(
                        s,
                        AlarmKind.PIN_LOCKOUT,
                        door_id=policy.id,
                        area_id=policy.area.id,
                        reader=wait.reader,
                        person_id=base["person_id"],
                        event_id=ev.id,
                    )
                s.commit()
                self._feedback(wait.reader, Feedback.DENIED)
                return {"decision": D.DENIED, "reason": reason}
            row.failed_pin_count = 0
            if result == "duress" and self.cfg.controller.duress_alarm:
                # Silent: the door opens as usual, the siren stays off, guards see the alarm.
                # Committed before anything else happens at the door.
                self._raise(
                    s,
                    AlarmKind.DURESS,
                    door_id=policy.id,
                    area_id=policy.area.id,
                    reader=wait.reader,
                    person_id=base["person_id"],
                    silent=True,
                )
                s.commit()
            return self._grant(
                s, runtime, policy, wait.card, wait.decision, wait.reader, wait.direction, base
            )

    def _purpose_entered(self, runtime: DoorRuntime, wait: PinWait) -> dict[str, Any]:
        """4(2) 用件の確認: the purpose code typed at the keypad becomes the entry's purpose."""
        runtime.pin_wait = None
        text = self.cfg.purposes.get(wait.keys)
        wait.keys = ""
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            base = self._base_for(policy, wait)
            if text is None:
                self._event(s, decision=D.DENIED, reason=Reason.PURPOSE_INVALID, **base)
                s.commit()
                self._feedback(wait.reader, Feedback.DENIED)
                return {"decision": D.DENIED, "reason": Reason.PURPOSE_INVALID}
            decision = replace(wait.decision, purpose=text)
            return self._grant(
                s,
                runtime,
                policy,
                wait.card,
                decision,
                wait.reader,
                wait.direction,
                base,
                purpose_given=True,
            )

    def _end_pin_wait(
        self, s: Session, runtime: DoorRuntime, reason: Reason, policy: DoorPolicy | None = None
    ) -> None:
        wait = runtime.pin_wait
        runtime.pin_wait = None
        if wait is None:
            return
        policy = policy or load_door(s, runtime.code, self.zone)
        assert policy is not None
        if wait.purpose and reason == Reason.PIN_TIMEOUT:
            reason = Reason.PURPOSE_TIMEOUT
        self._event(s, decision=D.DENIED, reason=reason, **self._base_for(policy, wait))
        self._feedback(wait.reader, Feedback.DENIED)

    # --- door inputs (4(4)) --------------------------------------------------------------------

    def on_contact(self, msg: ContactChanged) -> None:
        runtime = self.doors.get(msg.door)
        if runtime is None:
            return
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            where = dict(door_id=policy.id, area_id=policy.area.id)
            if msg.open:
                runtime.open_since = msg.monotonic
                if runtime.released_until is not None:
                    runtime.opened_during_release = True
                    self._event(s, kind="door", decision=D.INFO, reason=Reason.DOOR_OPENED, **where)
                    passages, runtime.passages = runtime.passages, []
                    self._apply_passages(s, policy, passages)
                else:
                    ev = self._event(
                        s, kind="door", decision=D.INFO, reason=Reason.DOOR_FORCED, **where
                    )
                    self._raise(s, AlarmKind.DOOR_FORCED, event_id=ev.id, **where)
            else:
                runtime.open_since = None
                self._event(s, kind="door", decision=D.INFO, reason=Reason.DOOR_CLOSED, **where)
                if runtime.held_alarm_raised:
                    runtime.held_alarm_raised = False
                    self._event(
                        s, kind="door", decision=D.INFO, reason=Reason.DOOR_HELD_RESTORED, **where
                    )
                    alarm_rows.restore_open(s, AlarmKind.DOOR_HELD, self.clock(), door_id=policy.id)
                alarm_rows.restore_open(s, AlarmKind.DOOR_FORCED, self.clock(), door_id=policy.id)
                if runtime.released_until is not None:
                    # relock on close: one grant, one passage
                    self._relock(s, runtime, policy)
            publish(s, "door", msg.door, "open" if msg.open else "closed", self.clock())

    def on_rex(self, msg: ExitRequested) -> None:
        runtime = self.doors.get(msg.door)
        if runtime is None:
            return
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            self._event(
                s,
                kind="exit_button",
                decision=D.GRANTED,
                reason=Reason.EXIT_BUTTON,
                direction=Direction.OUT,
                door_id=policy.id,
                area_id=policy.area.id,
            )
        self._release(runtime, policy.strike_seconds)

    def on_tamper(self, door_code: str | None, active: bool, reader: str | None) -> None:
        with session_scope(self.sessions) as s:
            policy = load_door(s, door_code, self.zone) if door_code else None
            where = dict(
                door_id=policy.id if policy else None, area_id=policy.area.id if policy else None
            )
            if active:
                ev = self._event(
                    s, kind="tamper", decision=D.INFO, reason=Reason.TAMPER, reader=reader, **where
                )
                self._raise(s, AlarmKind.TAMPER, event_id=ev.id, reader=reader, **where)
            else:
                self._event(
                    s,
                    kind="tamper",
                    decision=D.INFO,
                    reason=Reason.TAMPER_RESTORED,
                    reader=reader,
                    **where,
                )
                alarm_rows.restore_open(
                    s, AlarmKind.TAMPER, self.clock(), door_id=where["door_id"], reader=reader
                )

    def on_reader_state(self, msg: ReaderOnline | ReaderOffline) -> None:
        online = isinstance(msg, ReaderOnline)
        placed = self.cfg.reader_door(msg.reader_id)
        with session_scope(self.sessions) as s:
            policy = load_door(s, placed[0], self.zone) if placed else None
            where = dict(
                door_id=policy.id if policy else None, area_id=policy.area.id if policy else None
            )
            previous = s.scalar(
                select(Event.reason)
                .where(
                    Event.reader == msg.reader_id,
                    Event.reason.in_([Reason.READER_ONLINE, Reason.READER_OFFLINE]),
                )
                .order_by(Event.id.desc())
                .limit(1)
            )
            reader = self.readers.get(msg.reader_id)
            publish(
                s,
                "reader",
                msg.reader_id,
                "online" if online else "offline",
                self.clock(),
                detail=None if online else {"reason": msg.reason},  # type: ignore[union-attr]
                last_card=reader.last_card if reader else None,
            )
            if online:
                if previous == Reason.READER_OFFLINE:
                    self._event(
                        s,
                        kind="reader",
                        decision=D.INFO,
                        reason=Reason.READER_ONLINE,
                        reader=msg.reader_id,
                        **where,
                    )
                    alarm_rows.restore_open(
                        s, AlarmKind.READER_OFFLINE, self.clock(), reader=msg.reader_id
                    )
            elif previous != Reason.READER_OFFLINE:
                assert isinstance(msg, ReaderOffline)
                ev = self._event(
                    s,
                    kind="reader",
                    decision=D.INFO,
                    reason=Reason.READER_OFFLINE,
                    reader=msg.reader_id,
                    detail={"reason": msg.reason[:200]},
                    **where,
                )
                self._raise(
                    s, AlarmKind.READER_OFFLINE, event_id=ev.id, reader=msg.reader_id, **where
                )

    def _apply_passages(self, s: Session, policy: DoorPolicy, passages: list[Passage]) -> None:
        """Turn confirmed passages into occupancy; visitors first so an escort leaving with
        their visitor does not look like leaving them behind."""
        now = self.clock()
        for p in sorted(passages, key=lambda p: not p.visitor):
            self.occupancy.crossed(p.person_id, p.area_id)
            if p.direction == Direction.IN:
                self.occupancy.enter(
                    s,
                    p.area_id,
                    Occupant(p.person_id, p.visitor, now, p.escort_person_id, p.visit_id),
                    p.event_id,
                )
            else:
                self.occupancy.leave(s, p.area_id, p.person_id)
                if (
                    not p.visitor
                    and policy.area.two_person_rule
                    and self.occupancy.staff_count(p.area_id) == 1
                ):
                    self._raise(
                        s,
                        AlarmKind.TWO_PERSON_VIOLATION,
                        door_id=policy.id,
                        area_id=p.area_id,
                        person_id=p.person_id,
                    )
                if not p.visitor:
                    left = self.occupancy.visitors_escorted_by(p.person_id, p.area_id)
                    if left:
                        self._raise(
                            s,
                            AlarmKind.ESCORT_LEFT_VISITOR,
                            door_id=policy.id,
                            area_id=p.area_id,
                            person_id=p.person_id,
                            detail={"visitors": [o.person_id for o in left]},
                        )

    def _relock(self, s: Session, runtime: DoorRuntime, policy: DoorPolicy) -> None:
        runtime.hw.lock()
        runtime.released_until = None
        if not runtime.opened_during_release:
            for p in runtime.passages:
                self._event(
                    s,
                    kind="presentation",
                    decision=D.INFO,
                    reason=Reason.NOT_USED,
                    door_id=policy.id,
                    area_id=policy.area.id,
                    person_id=p.person_id,
                    direction=p.direction,
                    detail={"granted_event_id": p.event_id},
                )
        runtime.passages = []
        runtime.opened_during_release = False

    def _door_timers(self, runtime: DoorRuntime, now_mono: float) -> None:
        cached = runtime.policy
        if cached is None:
            return
        due_relock = runtime.released_until is not None and now_mono >= runtime.released_until
        due_held = (
            runtime.open_since is not None
            and not runtime.held_alarm_raised
            and runtime.has_contact
            and now_mono - runtime.open_since >= cached.held_open_seconds
        )
        due_pin = runtime.pin_wait is not None and now_mono >= runtime.pin_wait.deadline
        window = cached.escort_window_seconds
        expired_waits = [w for w in runtime.escort_waits if now_mono - w.since > window]
        first = runtime.first_of_two
        lonely = first is not None and now_mono - first.since > window
        runtime.recent_escorts = [r for r in runtime.recent_escorts if now_mono - r.at <= window]
        if not (due_relock or due_held or due_pin or expired_waits or lonely):
            return
        with session_scope(self.sessions) as s:
            policy = self._policy(s, runtime)
            where = dict(door_id=policy.id, area_id=policy.area.id)
            if due_relock:
                self._relock(s, runtime, policy)
            if due_held:
                runtime.held_alarm_raised = True
                ev = self._event(s, kind="door", decision=D.INFO, reason=Reason.DOOR_HELD, **where)
                self._raise(s, AlarmKind.DOOR_HELD, event_id=ev.id, **where)
            if due_pin:
                self._end_pin_wait(s, runtime, Reason.PIN_TIMEOUT, policy)
            for wait in expired_waits:
                runtime.escort_waits.remove(wait)
                reason = Reason.ESCORT_NOT_ALLOWED if wait.refused_by else Reason.ESCORT_REQUIRED
                self._event(
                    s,
                    decision=D.DENIED,
                    reason=reason,
                    detail={"waited_event_id": wait.event_id},
                    **self._base_for(policy, wait),
                )
                self._feedback(wait.reader, Feedback.DENIED)
            if lonely and first is not None:
                runtime.first_of_two = None
                self._event(
                    s,
                    decision=D.DENIED,
                    reason=Reason.TWO_PERSON_TIMEOUT,
                    detail={"waited_event_id": first.event_id},
                    **self._base_for(policy, first),
                )
                self._feedback(first.reader, Feedback.DENIED)

    def _policy(self, s: Session, runtime: DoorRuntime) -> DoorPolicy:
        policy = load_door(s, runtime.code, self.zone)
        if policy is None:
            raise LookupError(f"door {runtime.code} is missing from the database")
        runtime.policy = policy
        return policy

    # --- status ----------------------------------------------------------------------------

    def _publish_all_safe(self) -> None:
        try:
            with session_scope(self.sessions) as s:
                now = self.clock()
                publish(s, "controller", "controller", "running", now)
                for code, runtime in self.doors.items():
                    self._policy(s, runtime)
                    publish(s, "door", code, "open" if runtime.hw.is_open else "closed", now)
        except SQLAlchemyError:
            log.warning("database unavailable at start; continuing", exc_info=True)
