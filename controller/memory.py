"""What ``decide`` needs, held in the controller's memory: no database on the door path.

A ``Snapshot`` is immutable. It has two parts:

- the **base**, loaded once at start into numpy arrays (a few dozen bytes per cardholder, so
  millions fit like in a panel): credentials sorted by card id (binary search),
  people, last training and approved authorizations (sorted by person);
- the **overlay**, small dicts of the rows changed since (from the change feed, db.changes),
  which win over the base.

The feed thread (controller.feed) builds a new Snapshot for each batch of changes and swaps
the controller's reference to it, an atomic assignment: the door thread always reads one
consistent snapshot and never takes a lock.

The card index holds the card ids themselves (UTF-8 bytes, sorted): a lookup compares the
presented id exactly, and the arrays mean the same thing in every process, so the
controller can keep them in a local file between runs (controller.memory_cache).
"""

from __future__ import annotations

import bisect
import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from controller.facts import (
    AuthorizationFacts,
    CardFacts,
    CredentialFacts,
    DoorPolicy,
    PersonFacts,
    VisitFacts,
    load_doors,
)
from db.models import (
    Authorization,
    AuthorizationState,
    Change,
    Credential,
    CredentialState,
    Person,
    PersonKind,
    Training,
    Visit,
)

log = logging.getLogger(__name__)

NO_TIME = np.iinfo(np.int64).min
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
BATCH = 200_000
KINDS = [None, *(k.value for k in PersonKind)]  # code 0: no such person
STATES = [s.value for s in CredentialState]


def _us(v: Any) -> int:
    """A stored time (datetime, or SQLite's text) as microseconds since the epoch, UTC."""
    if v is None:
        return int(NO_TIME)
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return int(v.timestamp() * 1_000_000)


def _time(us: int) -> datetime | None:
    return None if us == NO_TIME else datetime.fromtimestamp(us / 1_000_000, UTC)


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


@dataclass(frozen=True, slots=True)
class PersonRec:
    kind: str
    active: bool
    designated: bool


@dataclass(frozen=True)
class Base:
    card_key: np.ndarray  # the card ids as bytes (numpy S), sorted
    cred_id: np.ndarray
    cred_tech: np.ndarray
    cred_state: np.ndarray
    cred_from: np.ndarray
    cred_until: np.ndarray
    cred_person: np.ndarray
    cred_failed: np.ndarray
    cred_temp: np.ndarray
    pin_hash: dict[int, str]
    techs: list[str]
    person_kind: np.ndarray  # indexed by person id; 0 = no such person
    person_active: np.ndarray
    person_designated: np.ndarray
    training: np.ndarray  # date ordinal of the newest training; 0 = none
    auth_person: np.ndarray
    auth_area: np.ndarray
    auth_id: np.ndarray
    auth_from: np.ndarray
    auth_until: np.ndarray
    auth_schedule: np.ndarray  # index into schedules; -1 = any time
    auth_purpose: np.ndarray  # index into purposes; -1 = none
    schedules: list[dict[str, Any]]
    purposes: list[str]

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


@dataclass(frozen=True)
class Overlay:
    # cred id -> (facts, owner person id); None: the credential was deleted
    creds: Mapping[int, tuple[CredentialFacts, int | None] | None] = field(default_factory=dict)
    cards: Mapping[str, frozenset[int]] = field(default_factory=dict)
    people: Mapping[int, PersonRec | None] = field(default_factory=dict)
    trainings: Mapping[int, date | None] = field(default_factory=dict)
    auths: Mapping[int, tuple[tuple[int, AuthorizationFacts], ...]] = field(default_factory=dict)


VisitRec = tuple[int | None, VisitFacts]  # (badge credential id, facts)


@dataclass(frozen=True)
class Snapshot:
    version: int
    base: Base
    overlay: Overlay
    doors: Mapping[str, DoorPolicy]
    visits: Mapping[int, tuple[VisitRec, ...]]  # open visits by visitor
    zone: ZoneInfo  # the site's zone, carried into every door policy

    # --- reading (door thread) ----------------------------------------------------------

    def door(self, code: str) -> DoorPolicy | None:
        return self.doors.get(code)

    def card(self, technology: str, card_id: str, area_id: int) -> CardFacts:
        """Like controller.facts.load_card, from memory."""
        found = self._credentials(card_id)
        exact = [c for c in found if c[0].technology == technology]
        pick = exact[0] if exact else (found[0] if len(found) == 1 else None)
        if pick is None:
            return CardFacts(None, None)
        cred, person_id = pick
        if person_id is None:
            return CardFacts(cred, None)
        person = self.person(person_id)
        if person is None:
            return CardFacts(cred, None)
        auths = tuple(a for _, a in self.authorizations(person_id, area_id))
        visit = self._visit(person, area_id, cred.id) if person.is_visitor else None
        return CardFacts(cred, person, auths, visit)

    def person(self, person_id: int) -> PersonFacts | None:
        ov = self.overlay
        if person_id in ov.people:
            rec = ov.people[person_id]
        else:
            b = self.base
            if person_id >= len(b.person_kind) or b.person_kind[person_id] == 0:
                return None
            rec = PersonRec(
                str(KINDS[int(b.person_kind[person_id])]),
                bool(b.person_active[person_id]),
                bool(b.person_designated[person_id]),
            )
        if rec is None:
            return None
        if person_id in ov.trainings:
            trained = ov.trainings[person_id]
        else:
            b = self.base
            o = int(b.training[person_id]) if person_id < len(b.training) else 0
            trained = date.fromordinal(o) if o else None
        return PersonFacts(person_id, rec.kind, "", rec.active, rec.designated, trained)

    def authorizations(
        self, person_id: int, area_id: int | None = None
    ) -> tuple[tuple[int, AuthorizationFacts], ...]:
        """A person's (area, authorization) pairs; with ``area_id``, that area's only (a
        presentation needs one area's: the others are not built)."""
        if person_id in self.overlay.auths:
            pairs = self.overlay.auths[person_id]
            return pairs if area_id is None else tuple(p for p in pairs if p[0] == area_id)
        b = self.base
        lo, hi = _equal_range(b.auth_person, person_id)
        out = []
        for i, area in enumerate(b.auth_area[lo:hi].tolist(), lo):
            if area_id is not None and area != area_id:
                continue
            s, p = int(b.auth_schedule[i]), int(b.auth_purpose[i])
            out.append(
                (
                    area,
                    AuthorizationFacts(
                        int(b.auth_id[i]),
                        _time(int(b.auth_from[i])),
                        _time(int(b.auth_until[i])),
                        b.schedules[s] if s >= 0 else None,
                        b.purposes[p] if p >= 0 else None,
                    ),
                )
            )
        return tuple(out)

    def _credentials(self, card_id: str) -> list[tuple[CredentialFacts, int | None]]:
        b, ov = self.base, self.overlay
        found: dict[int, tuple[CredentialFacts, int | None]] = {}
        lo, hi = _equal_range(b.card_key, card_id.encode())
        for i in range(lo, hi):
            cid = int(b.cred_id[i])
            if cid not in ov.creds:
                facts = CredentialFacts(
                    id=cid,
                    technology=b.techs[int(b.cred_tech[i])],
                    card_id=card_id,
                    state=STATES[int(b.cred_state[i])],
                    valid_from=_time(int(b.cred_from[i])),
                    valid_until=_time(int(b.cred_until[i])),
                    pin_hash=b.pin_hash.get(cid),
                    failed_pin_count=int(b.cred_failed[i]),
                    temporary=bool(b.cred_temp[i]),
                )
                found[cid] = (facts, int(b.cred_person[i]) or None)
        for cid in ov.cards.get(card_id, ()):
            f = ov.creds.get(cid)
            if f is not None and f[0].card_id == card_id:
                found[cid] = f
        return [found[k] for k in sorted(found)]

    def _visit(self, person: PersonFacts, area_id: int, cred_id: int) -> VisitFacts | None:
        mine = [v for badge, v in self.visits.get(person.id, ()) if badge == cred_id]
        mine.sort(key=lambda v: v.expected_from, reverse=True)
        return next((v for v in mine if v.area_id == area_id), None) or (mine[0] if mine else None)


# --- loading ------------------------------------------------------------------------------


def _equal_range(arr: np.ndarray, key: Any) -> tuple[int, int]:
    """Where ``key`` is in the sorted ``arr``. ``bisect`` in Python keeps the GIL: numpy's
    searchsorted releases it, and taking it back behind the feed, writer and reader threads
    cost the door thread up to a switch interval (5 ms) per lookup."""
    lo = bisect.bisect_left(arr, key)
    if lo == len(arr) or arr[lo] != key:
        return lo, lo
    return lo, bisect.bisect_right(arr, key, lo)


class _Reader:
    """Bulk reads for the load: a plain read-only sqlite3 connection on SQLite (the
    SQLAlchemy driver's type detection costs more than the read itself), the session's
    own driver connection elsewhere."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.own: sqlite3.Connection | None = None
        if conn.dialect.name == "sqlite" and conn.engine.url.database not in (None, "", ":memory:"):
            self.own = sqlite3.connect(f"file:{conn.engine.url.database}?mode=ro", uri=True)

    def batches(self, sql: str) -> Iterable[list[tuple[Any, ...]]]:
        if self.own is not None:
            cur: Any = self.own.cursor()
        else:
            raw = self.conn.connection.dbapi_connection
            assert raw is not None
            cur = raw.cursor()
        try:
            cur.execute(sql)
            while batch := cur.fetchmany(BATCH):
                yield list(batch)
        finally:
            cur.close()

    def close(self) -> None:
        if self.own is not None:
            self.own.close()


def load_snapshot(
    session: Session, zone: ZoneInfo, cached: tuple[Base, int] | None = None
) -> Snapshot:
    """Read the decision facts of every cardholder (one pass per table); door policies carry
    the site's ``zone`` (schedules and training days are read in its wall time).

    ``cached``: a base kept locally (controller.memory_cache) and the feed version it
    reflects; the caller then applies the changes past that version (the door and visit
    tables are small and always read)."""
    if cached is not None:
        base, version = cached
    else:
        conn = session.connection()
        # the version first: a change committed during the read is applied again (idempotent)
        version = int(session.scalar(select(func.max(Change.version))) or 0)
        reader = _Reader(conn)
        try:
            base = _load_base(reader)
        finally:
            reader.close()
    return Snapshot(
        version, base, Overlay(), load_doors(session, zone), _load_visits(session, None), zone
    )


def card_keys(cards: Sequence[str]) -> np.ndarray:
    """Card ids as a numpy bytes array (as wide as the longest)."""
    arr = np.array([c.encode() for c in cards])
    return arr if arr.dtype.kind == "S" else np.zeros(0, "S1")


def key_order(keys: np.ndarray) -> np.ndarray:
    """The stable order that sorts ``keys`` (numpy bytes) bytewise: the bytes padded to a
    multiple of 8 and read as big-endian integers, sorted column by column (``lexsort`` on
    integers is many times faster than sorting strings)."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    width = -(-keys.dtype.itemsize // 8) * 8
    words = np.ascontiguousarray(keys.astype(f"S{width}")).view(">u8").reshape(len(keys), -1)
    return np.lexsort(words.T[::-1])


def _ordinals(days: Sequence[Any]) -> np.ndarray:
    """Dates (date objects or SQLite's 'YYYY-MM-DD' text) as ordinals, vectorized; 0 = none."""
    arr = np.array(
        [d if isinstance(d, date | type(None)) else str(d)[:10] for d in days],
        dtype="datetime64[D]",
    )
    out = (arr - np.datetime64("1970-01-01", "D")).astype(np.int64) + EPOCH_ORDINAL
    out[np.isnat(arr)] = 0
    return out.astype(np.int32)


def _load_base(conn: _Reader) -> Base:
    techs: list[str] = []
    tech_code: dict[str, int] = {}
    state_code = {s: i for i, s in enumerate(STATES)}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("key", "id", "tech", "state", "person")}
    # the database maps states to codes, so the common columns come back as plain integers
    state_sql = " ".join(f"WHEN '{st}' THEN {i}" for st, i in state_code.items())
    for batch in conn.batches(
        f"SELECT id, COALESCE(person_id, 0), technology, card_id, CASE state {state_sql} "
        "ELSE 1 END FROM credentials",  # an unknown state counts as inactive
    ):
        ids, pids, tks, cards, states = zip(*batch, strict=True)
        n = len(ids)
        for t in set(tks):
            if t not in tech_code:
                tech_code[t] = len(techs)
                techs.append(t)
        parts["key"].append(card_keys(cards))
        parts["id"].append(np.array(ids, np.int64))
        parts["tech"].append(np.fromiter(map(tech_code.__getitem__, tks), np.uint8, n))
        parts["state"].append(np.array(states, np.uint8))
        parts["person"].append(np.array(pids, np.int64))
    cat = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in parts.items()}
    if not parts["key"]:
        cat["key"] = np.zeros(0, "S1")
    order = key_order(cat["key"])
    cat = {k: v[order] for k, v in cat.items()}
    # the rare columns (validity, PIN, wrong PINs, visitor badges): a second, sparse pass
    count = len(cat["id"])
    cat["from"] = np.full(count, NO_TIME, np.int64)
    cat["until"] = np.full(count, NO_TIME, np.int64)
    cat["failed"] = np.zeros(count, np.int32)
    cat["temp"] = np.zeros(count, np.bool_)
    pins: dict[int, str] = {}
    rare: list[tuple[Any, ...]] = [
        r
        for batch in conn.batches(
            "SELECT id, valid_from, valid_until, pin_hash, failed_pin_count, temporary "
            "FROM credentials WHERE valid_from IS NOT NULL OR valid_until IS NOT NULL OR "
            "pin_hash IS NOT NULL OR failed_pin_count <> 0 OR temporary"
        )
        for r in batch
    ]
    if rare:
        by_id = np.argsort(cat["id"], kind="stable")
        sorted_ids = cat["id"][by_id]
        for cid, vf, vu, ph, fails, temp in rare:
            i = int(by_id[bisect.bisect_left(sorted_ids, cid)])
            cat["from"][i] = _us(vf)
            cat["until"][i] = _us(vu)
            cat["failed"][i] = int(fails or 0)
            cat["temp"][i] = bool(temp)
            if ph:
                pins[int(cid)] = ph

    people = list(conn.batches("SELECT MAX(id) FROM people"))
    top = int(people[0][0][0] or 0) if people and people[0] else 0
    kind = np.zeros(top + 1, np.uint8)
    active = np.zeros(top + 1, np.bool_)
    designated = np.zeros(top + 1, np.bool_)
    kind_code = {k: i for i, k in enumerate(KINDS) if k}
    for batch in conn.batches("SELECT id, kind, active, designated FROM people"):
        ids, kinds, act, des = zip(*batch, strict=True)
        idx = np.array(ids, np.int64)
        kind[idx] = np.fromiter((kind_code.get(k, 1) for k in kinds), np.uint8, len(ids))
        active[idx] = np.array(act, np.bool_)
        designated[idx] = np.array(des, np.bool_)
    training = np.zeros(top + 1, np.int32)
    for batch in conn.batches(
        "SELECT person_id, MAX(completed_on) FROM trainings GROUP BY person_id"
    ):
        pids, days = zip(*batch, strict=True)
        idx = np.array(pids, np.int64)
        keep = idx <= top
        training[idx[keep]] = _ordinals(days)[keep]

    schedules: list[dict[str, Any]] = []
    sched_code: dict[str, int] = {}
    purposes: list[str] = []
    purpose_code: dict[str, int] = {}

    def code_schedule(v: Any) -> int:
        if v is None:
            return -1
        key = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        if key not in sched_code:
            parsed = _json(v)
            if not parsed:
                sched_code[key] = -1
            else:
                sched_code[key] = len(schedules)
                schedules.append(parsed)
        return sched_code[key]

    def code_purpose(v: str | None) -> int:
        if v is None:
            return -1
        if v not in purpose_code:
            purpose_code[v] = len(purposes)
            purposes.append(v)
        return purpose_code[v]

    aparts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("person", "area", "id", "from", "until", "sched", "purpose")
    }
    for batch in conn.batches(
        "SELECT id, person_id, area_id, valid_from, valid_until, schedule, default_purpose "
        f"FROM authorizations WHERE state = '{AuthorizationState.APPROVED.value}'",
    ):
        ids, pids, areas, vf, vu, sch, pur = zip(*batch, strict=True)
        n = len(ids)
        aparts["id"].append(np.array(ids, np.int64))
        aparts["person"].append(np.array(pids, np.int64))
        aparts["area"].append(np.array(areas, np.int32))
        aparts["from"].append(np.fromiter(map(_us, vf), np.int64, n))
        aparts["until"].append(np.fromiter(map(_us, vu), np.int64, n))
        aparts["sched"].append(np.fromiter(map(code_schedule, sch), np.int32, n))
        aparts["purpose"].append(np.fromiter(map(code_purpose, pur), np.int32, n))
    acat = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in aparts.items()}
    aorder = np.argsort(acat["person"], kind="stable")
    acat = {k: v[aorder] for k, v in acat.items()}
    return Base(
        card_key=cat["key"],
        cred_id=cat["id"],
        cred_tech=cat["tech"],
        cred_state=cat["state"],
        cred_from=cat["from"],
        cred_until=cat["until"],
        cred_person=cat["person"],
        cred_failed=cat["failed"],
        cred_temp=cat["temp"],
        pin_hash=pins,
        techs=techs,
        person_kind=kind,
        person_active=active,
        person_designated=designated,
        training=training,
        auth_person=acat["person"],
        auth_area=acat["area"],
        auth_id=acat["id"],
        auth_from=acat["from"],
        auth_until=acat["until"],
        auth_schedule=acat["sched"],
        auth_purpose=acat["purpose"],
        schedules=schedules,
        purposes=purposes,
    )


def _visit_facts(v: Visit) -> VisitFacts:
    return VisitFacts(
        id=v.id,
        area_id=v.area_id,
        escort_id=v.escort_id,
        purpose=v.purpose,
        expected_from=v.expected_from,
        expected_until=v.expected_until,
        device_kinds=tuple(
            str(d.get("kind", "")) for d in (v.declared_devices or []) if isinstance(d, dict)
        ),
        signed_out=v.signed_out_at is not None,
    )


def _load_visits(session: Session, person_ids: set[int] | None) -> dict[int, tuple[VisitRec, ...]]:
    q = select(Visit).where(Visit.signed_out_at.is_(None))
    if person_ids is not None:
        q = q.where(Visit.visitor_id.in_(person_ids))
    out: dict[int, list[VisitRec]] = {}
    for v in session.scalars(q):
        out.setdefault(v.visitor_id, []).append((v.badge_credential_id, _visit_facts(v)))
    return {k: tuple(v) for k, v in out.items()}


# --- applying the change feed (feed thread) -----------------------------------------------


def _credential(row: Credential) -> tuple[CredentialFacts, int | None]:
    return (
        CredentialFacts(
            id=row.id,
            technology=row.technology,
            card_id=row.card_id,
            state=row.state,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            pin_hash=row.pin_hash,
            failed_pin_count=row.failed_pin_count,
            temporary=row.temporary,
        ),
        row.person_id,
    )


def apply_changes(
    snap: Snapshot, session: Session, changes: Iterable[tuple[int, str, int | None, int | None]]
) -> Snapshot:
    """A new snapshot with the rows named by ``changes`` (version, table, row id, person id)
    read again from the database. Idempotent: applying a change twice reads the same row."""
    ov = snap.overlay
    creds = dict(ov.creds)
    cards = dict(ov.cards)
    people = dict(ov.people)
    trainings = dict(ov.trainings)
    auths = dict(ov.auths)
    visits = dict(snap.visits)
    version = snap.version
    cred_ids: set[int] = set()
    person_rows: set[int] = set()
    trained: set[int] = set()
    authorized: set[int] = set()
    visiting: set[int] = set()
    doors = False
    for v, table, row_id, person_id in changes:
        version = max(version, v)
        if table == "credentials" and row_id is not None:
            cred_ids.add(row_id)
        elif table == "people" and row_id is not None:
            person_rows.add(row_id)
        elif table == "trainings" and person_id is not None:
            trained.add(person_id)
        elif table == "authorizations" and person_id is not None:
            authorized.add(person_id)
        elif table == "visits" and person_id is not None:
            visiting.add(person_id)
        elif table in ("areas", "doors", "site_settings"):
            doors = True
    if cred_ids:
        rows = {
            r.id: r for r in session.scalars(select(Credential).where(Credential.id.in_(cred_ids)))
        }
        for cid in cred_ids:
            row = rows.get(cid)
            creds[cid] = _credential(row) if row is not None else None
            if row is not None:
                cards[row.card_id] = cards.get(row.card_id, frozenset()) | {cid}
    if person_rows:
        rows_p = {
            r.id: r for r in session.scalars(select(Person).where(Person.id.in_(person_rows)))
        }
        for pid in person_rows:
            p = rows_p.get(pid)
            people[pid] = PersonRec(p.kind, p.active, p.designated) if p is not None else None
    if trained:
        latest = dict(
            session.execute(
                select(Training.person_id, func.max(Training.completed_on))
                .where(Training.person_id.in_(trained))
                .group_by(Training.person_id)
            ).all()
        )
        for pid in trained:
            trainings[pid] = latest.get(pid)
    if authorized:
        found: dict[int, list[tuple[int, AuthorizationFacts]]] = {p: [] for p in authorized}
        for a in session.scalars(
            select(Authorization).where(
                Authorization.person_id.in_(authorized),
                Authorization.state == AuthorizationState.APPROVED,
            )
        ):
            found[a.person_id].append(
                (
                    a.area_id,
                    AuthorizationFacts(
                        a.id, a.valid_from, a.valid_until, a.schedule, a.default_purpose
                    ),
                )
            )
        for pid, lst in found.items():
            auths[pid] = tuple(lst)
    if visiting:
        fresh = _load_visits(session, visiting)
        for pid in visiting:
            if pid in fresh:
                visits[pid] = fresh[pid]
            else:
                visits.pop(pid, None)
    door_map = load_doors(session, snap.zone) if doors else snap.doors
    return Snapshot(
        version,
        snap.base,
        Overlay(creds, cards, people, trainings, auths),
        door_map,
        visits,
        snap.zone,
    )
