"""Event log: filters, keyset pagination over ties, streamed CSV (BOM, Japanese, escaping)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from db.eventlog import append_event
from db.models import Alarm, Event, Person, PersonKind
from tests.web.conftest import Auth, Site
from web import eventquery

T0 = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo


def add_events(factory: sessionmaker[Session], site: Site, n: int = 120) -> list[int]:
    """n events, several sharing one timestamp (ties must not break paging)."""
    ids = []
    with factory() as s:
        visitor = Person(kind=PersonKind.VISITOR, name="来訪 太郎", organization="保守会社")
        s.add(visitor)
        s.flush()
        for i in range(n):
            who = visitor.id if i % 10 == 0 else site.tanaka
            ev = append_event(
                s,
                Event(
                    occurred_at=T0 + timedelta(minutes=i // 4),  # 4 rows per timestamp
                    kind="presentation",
                    door_id=site.sr_door if i % 2 == 0 else site.mn_door,
                    area_id=site.server_room if i % 2 == 0 else site.mynumber_room,
                    direction="in",
                    person_id=who,
                    decision="denied" if i % 3 == 0 else "granted",
                    reason="no_authorization" if i % 3 == 0 else "granted",
                    purpose='=HYPERLINK("http://evil")' if i == 5 else "保守作業",
                    visitor=who == visitor.id,
                    raw_card_id="0102030405060708",
                ),
            )
            ids.append(ev.id)
        s.add(Alarm(kind="door_forced", raised_at=T0, event_id=ids[7]))
        s.commit()
    return ids


def test_keyset_pages_cover_every_row_once_in_order(site: Site, session_factory) -> None:
    ids = add_events(session_factory, site)
    f = eventquery.EventFilter()
    seen: list[Event] = []
    with session_factory() as s:
        page = eventquery.page(s, f, size=7)
        while True:
            seen += page.rows
            if page.next_cursor is None:
                break
            page = eventquery.page(s, f, after=page.next_cursor, size=7)
        assert [e.id for e in seen] == sorted(ids, reverse=True)  # ties broken by id
        # going back from the last page gives the previous page again
        back = eventquery.page(s, f, before=page.prev_cursor, size=7)
        assert [e.id for e in back.rows] == [
            e.id for e in seen[-len(page.rows) - 7 : -len(page.rows)]
        ]


def test_pages_stay_stable_when_new_events_arrive(site: Site, session_factory) -> None:
    add_events(session_factory, site, 20)
    f = eventquery.EventFilter()
    with session_factory() as s:
        first = eventquery.page(s, f, size=5)
        append_event(
            s,
            Event(
                occurred_at=T0 + timedelta(hours=5),
                kind="presentation",
                decision="granted",
                reason="granted",
            ),
        )
        s.commit()
        second = eventquery.page(s, f, after=first.next_cursor, size=5)
        assert not {e.id for e in first.rows} & {e.id for e in second.rows}
        assert second.rows[0].occurred_at <= first.rows[-1].occurred_at


def test_batched_iteration_matches_one_query(site: Site, session_factory) -> None:
    add_events(session_factory, site, 50)
    f = eventquery.EventFilter(decision="granted")
    with session_factory() as s:
        small = [e.id for e in eventquery.iterate(s, f, batch=3)]
        big = [e.id for e in eventquery.iterate(s, f, batch=10_000)]
    assert small == big and len(big) == len([i for i in range(50) if i % 3 != 0])
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Tokyo")
    with session_factory() as s:
        csv_small = "".join(eventquery.csv_stream(s, f, "ja", zone, batch=3))
        csv_big = "".join(eventquery.csv_stream(s, f, "ja", zone, batch=10_000))
    assert csv_small == csv_big and csv_big.count("\r\n") == 1 + len(big)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"visitors": "1"}, lambda i: i % 10 == 0),
        ({"decision": "denied"}, lambda i: i % 3 == 0),
        ({"reason": "granted"}, lambda i: i % 3 != 0),
        ({"area": "AREA_SR"}, lambda i: i % 2 == 0),
        ({"person": "来訪"}, lambda i: i % 10 == 0),
        # Tokyo wall time: 09:05 <= t < 09:10 covers minutes 5..9 = rows 20..39
        ({"from": "2026-04-01T09:05", "to": "2026-04-01T09:10"}, lambda i: 20 <= i < 40),
        ({"alarms": "1"}, lambda i: i == 7),
    ],
)
def test_filters(site: Site, session_factory, args, expected) -> None:  # type: ignore[no-untyped-def]
    ids = add_events(session_factory, site, 60)
    args = {k: (str(site.server_room) if v == "AREA_SR" else v) for k, v in args.items()}
    from zoneinfo import ZoneInfo

    f = eventquery.parse_filter(args, ZoneInfo("Asia/Tokyo"))
    assert f.errors == []
    with session_factory() as s:
        got = {e.id for e in eventquery.iterate(s, f)}
    assert got == {ids[i] for i in range(60) if expected(i)}


def test_bad_filter_values_are_named_not_fatal(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("manager")
    resp = auth.client.get("/events/?from=yesterday&decision=maybe&area=x")
    assert resp.status_code == 200
    assert "from:" in resp.text and "decision:" in resp.text and "area:" in resp.text
    assert (
        "2026-04-01T09:00 のような日時を指定してください" in resp.text
    )  # in the operator's language


def test_a_forged_page_position_is_named_not_silently_ignored(
    app: Flask, site: Site, auth: Auth
) -> None:
    auth.login("manager")
    resp = auth.client.get("/events/?after=bm90LWEtY3Vyc29y")
    assert resp.status_code == 200 and "after: 不明な値です" in resp.text
    assert "before:" not in resp.text


def test_event_page_and_csv_export(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    add_events(session_factory, site, 120)
    auth.login("manager")
    page = auth.client.get(f"/events/?decision=denied&area={site.server_room}")
    assert page.status_code == 200
    assert page.text.count("data-event-id=") == 20  # rows i%6==0 of 120
    assert "拒否" in page.text and "来訪 太郎" in page.text
    resp = auth.client.get(f"/events/export.csv?area={site.server_room}")
    assert resp.status_code == 200 and resp.is_streamed
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the UTF-8 as Japanese
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "時刻 (JST)" and rows[0][2] == "管理区域" and rows[0][5] == "氏名"
    # words, not codes: the area by name, direction and decision in Japanese
    assert {r[2] for r in rows[1:]} == {"サーバ室"}
    assert {r[4] for r in rows[1:]} <= {"入室", "退室"} and "拒否" in {r[7] for r in rows[1:]}
    assert len(rows) == 1 + 60
    assert rows[1][0] == "2026-04-01 09:29:00"  # newest first, shown in Tokyo time
    formula = [r for r in rows if "HYPERLINK" in r[10]]
    assert formula == []  # row 5 is in the other area
    all_rows = list(
        csv.reader(
            io.StringIO(auth.client.get("/events/export.csv").get_data().decode("utf-8-sig"))
        )
    )
    (cell,) = [r[10] for r in all_rows if "HYPERLINK" in r[10]]
    assert cell.startswith("'=")  # formula injection neutralised
    # English export has English headers and reason sentences
    auth.post("/language", {"locale": "en", "next": "/events/"})
    en = auth.client.get("/events/export.csv").get_data().decode("utf-8-sig")
    assert en.startswith("Time (JST),Event id,Managed area") and "Access granted." in en
    assert ",Granted," in en and ",In," in en


def test_api_events_uses_the_same_filters(app: Flask, site: Site, session_factory, client) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from db.models import Operator
    from web.accounts import create_api_token

    ids = add_events(session_factory, site, 30)
    with session_factory() as s:
        _id, token = create_api_token(
            s, s.scalar(select(Operator).where(Operator.username == "auditor")), "t"
        )
        s.commit()
    h = {"Authorization": f"Bearer {token}"}
    got, cursor = [], None
    while True:
        url = "/api/v1/events?visitors=1&limit=2" + (f"&after={cursor}" if cursor else "")
        body = client.get(url, headers=h).json
        got += [e["id"] for e in body["events"]]
        cursor = body["next"]
        assert cursor is None or eventquery.decode_cursor(cursor) is not None
        if not cursor:
            break
    assert got == sorted((ids[i] for i in range(30) if i % 10 == 0), reverse=True)
    assert client.get("/api/v1/events?decision=maybe", headers=h).status_code == 400


@pytest.mark.parametrize(
    "zone_name", ["Asia/Tokyo", "America/St_Johns", "Australia/Lord_Howe", "Europe/London"]
)
def test_export_local_times_match_the_zone_across_transitions(zone_name: str) -> None:
    """The per-hour offset cache gives what astimezone + strftime give, minute by minute
    through DST changes (St John's changes at :30 UTC, Lord Howe by 30 minutes), for the
    driver's text (SQLite) and naive datetimes (PostgreSQL)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    local = eventquery._LocalTimes(zone)
    starts = [datetime(2026, m, d, tzinfo=UTC) for m, d in ((3, 7), (3, 28), (4, 4), (10, 3))]
    starts += [datetime(2026, m, d, tzinfo=UTC) for m, d in ((10, 24), (11, 1))]
    checked = 0
    for start in starts:
        for minute in range(0, 3 * 24 * 60, 7):
            t = start + timedelta(minutes=minute, seconds=minute % 60, microseconds=minute)
            want = t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            naive = t.replace(tzinfo=None)
            assert local(naive.isoformat(" ")) == want, t
            assert local(naive) == want, t
            assert local(t) == want, t
            checked += 1
    assert checked > 3000


def test_export_rows_match_the_events(site: Site, session_factory) -> None:  # type: ignore[no-untyped-def]
    """Every cell of the fast export against the ORM rows formatted the plain way."""
    from zoneinfo import ZoneInfo

    from db.models import Area, Door
    from domain.reasons import sentence
    from domain.words import word

    ids = add_events(session_factory, site, 40)
    zone = ZoneInfo("Asia/Tokyo")
    with session_factory() as s:
        text = "".join(eventquery.csv_stream(s, eventquery.EventFilter(), "en", zone, batch=7))
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1:]
        events = {e.id: e for e in s.query(Event).filter(Event.id.in_(ids))}
        doors = {d.id: d.name for d in s.query(Door)}
        areas = {a.id: a.name for a in s.query(Area)}
        people = {p.id: p.name for p in s.query(Person)}
    assert [int(r[1]) for r in rows] == sorted(ids, key=lambda i: (events[i].occurred_at, i))[::-1]
    for r in rows:
        e = events[int(r[1])]
        assert r[0] == e.occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        assert r[2] == (areas[e.area_id] if e.area_id else "")
        assert r[3] == doors[e.door_id]
        assert r[4] == word("direction", e.direction, "en")
        assert r[5] == people[e.person_id]
        assert r[6] == ("yes" if e.visitor else "")
        assert r[7:10] == [word("decision", e.decision, "en"), e.reason, sentence(e.reason, "en")]
        purpose = e.purpose or ""
        assert r[10] == ("'" + purpose if purpose.startswith("=") else purpose)
        assert r[12:] == [e.raw_card_id or "", e.hash, e.controller]
