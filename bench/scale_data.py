"""Build a site-sized nyutai database for the benchmarks, through the project's own schema.

    python -m bench.scale_data --url sqlite:////tmp/scale/nyutai.db --people 1000000 \
        --events 10000000 [--site-dir /tmp/scale]

Makes (deterministically from --seed): 8 managed areas, 64 doors with 128 simulated readers,
``people`` staff with one FeliCa card each (card id = ``card_id(i)``), one training each
(about 5 % older than 12 months), one or two approved authorizations each (some with a
weekday schedule), about 1 % visitors with a visit, and ``events`` hash-chained events over
the year before ``--end`` in the chain format of db.chain (``nyutai verify`` accepts them).
With --site-dir it also writes ``site.toml`` describing the same areas, doors and readers
for a controller (sim GPIO, sim readers), its database URL pointing at the generated one.

Rows go in with the driver's bulk paths (sqlite3 ``executemany`` in large batches with
``synchronous=OFF`` for the build only; PostgreSQL ``COPY``), not through the ORM: building
is not what is measured. The hash chain is computed exactly as ``db.chain`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from db.chain import EVENT_FIELDS, GENESIS, format_time
from db.engine import make_engine
from db.migrate import upgrade
from domain.search import search_key

AREAS = 8
DOORS = 64
BATCH = 50_000
FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
]
GIVEN = [
    "誠",
    "翔",
    "蓮",
    "陽菜",
    "結衣",
    "大翔",
    "美咲",
    "健太",
    "直樹",
    "由美",
    "恵",
    "拓也",
    "彩",
    "和也",
    "愛",
    "亮",
]
KANA_FAMILY = [
    "さとう",
    "すずき",
    "たかはし",
    "たなか",
    "いとう",
    "わたなべ",
    "やまもと",
    "なかむら",
    "こばやし",
    "かとう",
    "よしだ",
    "やまだ",
    "ささき",
    "やまぐち",
    "まつもと",
    "いのうえ",
]
KANA_GIVEN = [
    "まこと",
    "しょう",
    "れん",
    "ひな",
    "ゆい",
    "ひろと",
    "みさき",
    "けんた",
    "なおき",
    "ゆみ",
    "めぐみ",
    "たくや",
    "あや",
    "かずや",
    "あい",
    "りょう",
]


@dataclass(frozen=True)
class ScaleInfo:
    url: str
    people: int
    events: int
    doors: int
    site_file: Path | None
    seconds: float


def card_id(i: int) -> str:
    """The FeliCa IDm of person ``i`` (1-based): 16 hex digits, unique."""
    return f"0114{i:012X}"


def door_code(d: int) -> str:
    return f"door-{d:02d}"


def area_code(a: int) -> str:
    return f"area-{a}"


def reader_ids(d: int) -> tuple[str, str]:
    return f"{door_code(d)}-in", f"{door_code(d)}-out"


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


class _Writer:
    """Bulk inserts for SQLite (executemany) or PostgreSQL (COPY) on one raw connection."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.raw = self.engine.raw_connection()
        if self.dialect == "sqlite":
            self.raw.execute("PRAGMA synchronous=OFF")  # the build only; the product uses FULL

    def value(self, v: Any) -> Any:
        if isinstance(v, datetime):
            v = _naive(v)
            return v.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else v
        if isinstance(v, bool) and self.dialect == "sqlite":
            return int(v)
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False)
        return v

    def insert(self, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
        n = 0
        cur = self.raw.cursor()
        if self.dialect == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row([self.value(v) for v in row])
                    n += 1
        else:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            batch: list[list[Any]] = []
            for row in rows:
                batch.append([self.value(v) for v in row])
                if len(batch) >= BATCH:
                    cur.executemany(sql, batch)
                    self.raw.commit()  # a bounded WAL: one huge transaction doubles the disk
                    n += len(batch)
                    batch.clear()
            if batch:
                cur.executemany(sql, batch)
                n += len(batch)
        self.raw.commit()
        return n

    def close(self) -> None:
        if self.dialect == "postgresql":
            cur = self.raw.cursor()
            for table in (
                "areas",
                "doors",
                "people",
                "credentials",
                "trainings",
                "authorizations",
                "visits",
                "events",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
                cur.execute(f"ANALYZE {table}")
            self.raw.commit()
        else:
            self.raw.execute("ANALYZE")
            self.raw.commit()
        self.raw.close()
        self.engine.dispose()


def _people(n: int, rng: random.Random, created: datetime) -> Iterator[tuple[Any, ...]]:
    for i in range(1, n + 1):
        f, g = rng.randrange(len(FAMILY)), rng.randrange(len(GIVEN))
        visitor = i % 100 == 0
        name, kana = f"{FAMILY[f]} {GIVEN[g]}", f"{KANA_FAMILY[f]} {KANA_GIVEN[g]}"
        yield (
            i,
            "visitor" if visitor else "staff",
            name,
            kana,
            "来訪社" if visitor else f"第{i % 40 + 1}課",
            None if visitor else f"E{i:07d}",
            not visitor and i % 50 != 1,  # about 2 % of staff not designated
            True,
            created,
            search_key(name, kana),  # what the console's person search compares with
        )


def _credentials(n: int, created: datetime) -> Iterator[tuple[Any, ...]]:
    for i in range(1, n + 1):
        yield (i, i, "felica", card_id(i), i % 100 == 0, "active", 0, created)


def _trainings(
    n: int, rng: random.Random, today: date, created: datetime
) -> Iterator[tuple[Any, ...]]:
    for i in range(1, n + 1):
        if i % 100 == 0:
            continue  # visitors have no training
        age = rng.randrange(380, 420) if i % 20 == 7 else rng.randrange(1, 330)
        yield (i, i, "年次研修", today - timedelta(days=age), created)


def _authorizations(n: int, rng: random.Random, created: datetime) -> Iterator[tuple[Any, ...]]:
    aid = 0
    weekdays = {d: [["07:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    for i in range(1, n + 1):
        if i % 100 == 0:
            continue
        areas = {i % AREAS} | ({(i * 7 + 3) % AREAS} if i % 3 == 0 else set())
        for a in sorted(areas):
            aid += 1
            schedule = weekdays if i % 10 == 0 else None
            yield (aid, i, a + 1, schedule, "定常業務", "approved", created, created)


def _visits(n: int, end: datetime) -> Iterator[tuple[Any, ...]]:
    for vid, i in enumerate(range(100, n + 1, 100), start=1):
        host = i - 1
        yield (
            vid,
            i,
            (i // 100) % AREAS + 1,
            "保守作業",
            host,
            host,
            True,
            [],
            end - timedelta(hours=2),
            end + timedelta(hours=6),
            i,
            end - timedelta(hours=1),
            end - timedelta(hours=1),
            False,
        )


def _events(
    n: int, people: int, doors: int, start: datetime, end: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    span = (end - start).total_seconds()
    step = span / max(n, 1)
    prev = GENESIS
    # Crossings pair up as at a real site: whoever is let in leaves the same area through the
    # same door one to nine hours later (a heap of exits due), so a few thousand people are
    # inside at any moment, not half of everyone (what random directions gave).
    due: list[tuple[datetime, int, int]] = []  # (exit time, person, door)
    inside: set[int] = set()
    for seq in range(1, n + 1):
        t = start + timedelta(seconds=seq * step + rng.random() * step * 0.5)
        if due and due[0][0] <= t:
            _, pid, d = heapq.heappop(due)
            inside.discard(pid)
            r, direction = 0.0, "out"
        else:
            d = rng.randrange(doors)
            pid = rng.randrange(1, people + 1)
            while pid in inside and len(inside) < people:
                pid = rng.randrange(1, people + 1)
            r, direction = rng.random(), "in"
            if r < 0.86:
                inside.add(pid)
                heapq.heappush(due, (t + timedelta(hours=1 + 8 * rng.random()), pid, d))
        rin, rout = reader_ids(d)
        row: dict[str, Any] = dict.fromkeys(EVENT_FIELDS)
        row.update(
            seq=seq, occurred_at=format_time(t), door_id=d + 1, area_id=d % AREAS + 1, visitor=False
        )
        if r < 0.86:  # a granted crossing
            row.update(
                kind="presentation",
                reader=rin if direction == "in" else rout,
                direction=direction,
                person_id=pid,
                credential_id=pid,
                technology="felica",
                raw_card_id=card_id(pid),
                decision="granted",
                reason="granted" if direction == "in" else "exit",
                purpose="定常業務" if direction == "in" else None,
                visitor=pid % 100 == 0,
            )
        elif r < 0.90:  # a denial of a known card
            row.update(
                kind="presentation",
                reader=rin,
                direction="in",
                person_id=pid,
                credential_id=pid,
                technology="felica",
                raw_card_id=card_id(pid),
                decision="denied",
                reason="no_authorization",
                visitor=pid % 100 == 0,
            )
        elif r < 0.92:  # an unknown card
            row.update(
                kind="presentation",
                reader=rin,
                direction="in",
                technology="felica",
                raw_card_id=f"01FF{rng.getrandbits(48):012X}",
                decision="denied",
                reason="unknown_card",
            )
        else:  # the door's own happenings
            opened = r < 0.96
            row.update(
                kind="door_opened" if opened else "door_closed",
                decision="info",
                reason="door_opened" if opened else "door_closed",
            )
        payload = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(prev.encode("ascii") + payload.encode()).hexdigest()
        yield (
            seq,
            seq,
            prev,
            digest,
            t,
            row["kind"],
            row["door_id"],
            row["area_id"],
            row["reader"],
            row["direction"],
            row["person_id"],
            row["credential_id"],
            row["technology"],
            row["raw_card_id"],
            row["decision"],
            row["reason"],
            row["purpose"],
            row["visitor"],
        )
        prev = digest


def write_site(site_dir: Path, url: str, doors: int = DOORS) -> Path:
    """A site file with the generated areas, doors and sim readers (sim GPIO)."""
    lines = [
        "# Generated by bench/scale_data.py: the scale benchmark's site.",
        "[site]",
        'name = "Scale bench"',
        "[database]",
        f'url = "{url}"',
        "[controller]",
        'gpio_backend = "sim"',
        "",
    ]
    for a in range(AREAS):
        lines += [f"[areas.{area_code(a)}]", f'name = "管理区域 {a}"', 'antipassback = "off"', ""]
    for d in range(doors):
        rin, rout = reader_ids(d)
        lines += [
            f"[doors.{door_code(d)}]",
            f'area = "{area_code(d % AREAS)}"',
            f'name = "扉 {d}"',
            f'entry_reader = "{rin}"',
            f'exit_reader = "{rout}"',
            "",
            f'[readers.{rin}]\nurl = "sim:{rin}"\ndebounce_seconds = 0.0',
            f'[readers.{rout}]\nurl = "sim:{rout}"\ndebounce_seconds = 0.0',
            "",
        ]
    site_dir.mkdir(parents=True, exist_ok=True)
    path = site_dir / "site.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def generate(
    url: str,
    *,
    people: int = 1_000_000,
    events: int = 10_000_000,
    doors: int = DOORS,
    end: datetime = datetime(2026, 12, 1, tzinfo=UTC),
    seed: int = 1,
    site_dir: Path | None = None,
    progress: bool = False,
) -> ScaleInfo:
    """Create the schema at ``url`` and fill it; the database must be empty."""
    began = time.perf_counter()
    upgrade(url)
    rng = random.Random(seed)
    created = end - timedelta(days=400)
    w = _Writer(url)

    def step(what: str, count: int) -> None:
        if progress:
            print(
                f"  {what}: {count:,} rows ({time.perf_counter() - began:.0f} s)", file=sys.stderr
            )

    try:
        step(
            "areas",
            w.insert(
                "areas",
                (
                    "id",
                    "code",
                    "name",
                    "permitted_devices",
                    "antipassback",
                    "escort_policy",
                    "visitor_exit_needs_escort",
                    "max_visitors_per_escort",
                    "two_person_rule",
                    "offline",
                    "created_at",
                ),
                (
                    (
                        a + 1,
                        area_code(a),
                        f"管理区域 {a}",
                        [],
                        "off",
                        "any",
                        True,
                        3,
                        False,
                        "cached",
                        created,
                    )
                    for a in range(AREAS)
                ),
            ),
        )
        step(
            "doors",
            w.insert(
                "doors",
                (
                    "id",
                    "code",
                    "name",
                    "area_id",
                    "entry_reader",
                    "exit_reader",
                    "exit_button",
                    "strike_seconds",
                    "held_open_seconds",
                    "pin_required",
                    "pin_timeout_seconds",
                    "escort_window_seconds",
                    "ask_purpose",
                    "snapshot_on_entry",
                    "created_at",
                ),
                (
                    (
                        d + 1,
                        door_code(d),
                        f"扉 {d}",
                        d % AREAS + 1,
                        *reader_ids(d),
                        False,
                        5.0,
                        30.0,
                        False,
                        10.0,
                        10.0,
                        False,
                        False,
                        created,
                    )
                    for d in range(doors)
                ),
            ),
        )
        step(
            "people",
            w.insert(
                "people",
                (
                    "id",
                    "kind",
                    "name",
                    "name_kana",
                    "organization",
                    "employee_no",
                    "designated",
                    "active",
                    "created_at",
                    "search_key",
                ),
                _people(people, rng, created),
            ),
        )
        step(
            "credentials",
            w.insert(
                "credentials",
                (
                    "id",
                    "person_id",
                    "technology",
                    "card_id",
                    "temporary",
                    "state",
                    "failed_pin_count",
                    "created_at",
                ),
                _credentials(people, created),
            ),
        )
        step(
            "trainings",
            w.insert(
                "trainings",
                ("id", "person_id", "course", "completed_on", "created_at"),
                _trainings(people, rng, end.date(), created),
            ),
        )
        step(
            "authorizations",
            w.insert(
                "authorizations",
                (
                    "id",
                    "person_id",
                    "area_id",
                    "schedule",
                    "default_purpose",
                    "state",
                    "approved_at",
                    "created_at",
                ),
                _authorizations(people, rng, created),
            ),
        )
        step(
            "visits",
            w.insert(
                "visits",
                (
                    "id",
                    "visitor_id",
                    "area_id",
                    "purpose",
                    "host_id",
                    "escort_id",
                    "id_checked",
                    "declared_devices",
                    "expected_from",
                    "expected_until",
                    "badge_credential_id",
                    "signed_in_at",
                    "created_at",
                    "devices_confirmed_out",
                ),
                _visits(people, end),
            ),
        )
        step(
            "events",
            w.insert(
                "events",
                (
                    "id",
                    "seq",
                    "prev_hash",
                    "hash",
                    "occurred_at",
                    "kind",
                    "door_id",
                    "area_id",
                    "reader",
                    "direction",
                    "person_id",
                    "credential_id",
                    "technology",
                    "raw_card_id",
                    "decision",
                    "reason",
                    "purpose",
                    "visitor",
                ),
                _events(events, people, doors, end - timedelta(days=365), end, rng),
            ),
        )
    finally:
        w.close()
    site = write_site(site_dir, url, doors) if site_dir is not None else None
    return ScaleInfo(url, people, events, doors, site, time.perf_counter() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="an empty database (SQLite file or PostgreSQL)")
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--doors", type=int, default=DOORS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--site-dir", type=Path)
    args = ap.parse_args()
    info = generate(
        args.url,
        people=args.people,
        events=args.events,
        doors=args.doors,
        seed=args.seed,
        site_dir=args.site_dir,
        progress=True,
    )
    print(
        f"built {info.people:,} people, {info.events:,} events, {info.doors} doors "
        f"in {info.seconds:.0f} s" + (f"; site file {info.site_file}" if info.site_file else "")
    )


if __name__ == "__main__":
    main()
