"""Every template string is translatable and translated; Japanese pages carry no English.

The page check renders every page in Japanese with Japanese sample data and fails on
any visible English word (outside <code>, where ids and card numbers live).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select

import web
from db.eventlog import append_event
from db.incidents import open_incident_for_alarm
from db.models import Alarm, DeviceStatus, Event, Presence, Visit
from db.types import utcnow
from tests.web.conftest import Auth, Site

WEB = Path(web.__file__).parent
PO = WEB / "translations/ja/LC_MESSAGES/messages.po"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}

# words that are the same in Japanese UI (brand, acronyms, technology names)
ALLOWED = {
    "nyutai",
    "JSON",
    "English",
    "CSV",
    "PDF",
    "PIN",
    "ID",
    "JST",
    "USB",
    "PC",
    "FeliCa",
    "ISO",
    "MIFARE",
    "EM",
    "kHz",
    "Wiegand",
    "OSDP",
}
WORD = re.compile(r"[A-Za-z]{2,}")


def test_every_message_has_a_japanese_translation() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ja")
    found = {
        msg[2] if isinstance(msg[2], str) else msg[2][0]
        for msg in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS)
    }
    assert len(found) > 250
    untranslated = sorted(m for m in found if not (catalog.get(m) and catalog.get(m).string))
    assert untranslated == [], "run the catalog update; untranslated: " + repr(untranslated[:20])


def _messages(catalog: Catalog) -> dict[object, object]:
    """What a compiled catalogue serves: id (with plural) -> translation, fuzzy ones left out."""
    return {
        (m.id, m.context): m.string
        for m in catalog
        if m.id and m.string and not m.fuzzy and (not isinstance(m.string, tuple) or all(m.string))
    }


def test_compiled_catalog_matches_the_po_file() -> None:
    """The committed .mo serves exactly the .po's translations (compared as messages, not
    bytes: the compiler writes its own version into the header)."""
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ja")
    with PO.with_suffix(".mo").open("rb") as f:
        compiled = read_mo(f)
    wanted = _messages(catalog)
    assert len(wanted) > 250
    served = _messages(compiled)
    stale = sorted(str(k) for k in wanted.keys() ^ served.keys())
    changed = sorted(str(k) for k in wanted.keys() & served.keys() if wanted[k] != served[k])
    hint = "recompile messages.mo (pybabel compile -d web/translations)"
    assert (stale, changed) == ([], []), hint


class _Text(HTMLParser):
    """Visible text and user-facing attributes, skipping script/style/code and elements
    marked translate="no" (HTML's own marker for identifiers such as reader ids)."""

    SKIP = {"script", "style", "code", "title"}
    VOID = {"input", "br", "meta", "link", "img", "hr", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: is it skipped?
        self.chunks: list[str] = []

    def _skipping(self) -> bool:
        return any(self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skipping():
            for name, value in attrs:
                if name in ("placeholder", "aria-label", "title") and value:
                    self.chunks.append(value)
        if tag not in self.VOID:
            self.stack.append(tag in self.SKIP or ("translate", "no") in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping() and data.strip():
            self.chunks.append(data.strip())


def visible_text(html: str) -> list[str]:
    p = _Text()
    p.feed(html)
    return p.chunks


def english_words(html: str) -> set[str]:
    return {w for chunk in visible_text(html) for w in WORD.findall(chunk)} - ALLOWED


@pytest.fixture
def busy_site(site: Site, session_factory) -> Site:  # type: ignore[no-untyped-def]
    """Rows in every table the pages show, so every branch of the templates renders."""
    now = utcnow()
    with session_factory() as s:
        visit = Visit(
            visitor_id=site.sato,
            area_id=site.server_room,
            purpose="点検",
            escort_id=site.tanaka,
            id_checked=True,
            id_kind="passport",
            declared_devices=[{"kind": "maintenance-laptop", "serial": "12"}],
            expected_from=now,
            expected_until=now,
        )
        s.add(visit)
        s.flush()
        s.add(
            Presence(
                person_id=site.sato,
                area_id=site.server_room,
                entered_at=now,
                escort_person_id=site.tanaka,
                visit_id=visit.id,
            )
        )
        held = Alarm(kind="door_held", door_id=site.sr_door, raised_at=now)
        s.add(held)
        s.flush()
        # its incident, with the summary db.incidents writes ("ja / en (place)")
        open_incident_for_alarm(s, held, [], [])
        s.add(
            Alarm(
                kind="tamper", door_id=site.sr_door, raised_at=now, state="cleared", cleared_at=now
            )
        )
        for kind, key, state in (
            ("reader", "sr-in", "online"),
            ("door", "server-room-door", "locked"),
            ("reader", "sr-out", "offline"),
        ):
            s.add(DeviceStatus(kind=kind, key=key, state=state, updated_at=now))
        for decision, reason, direction in (
            ("granted", "granted", "in"),
            ("denied", "training_expired", "in"),
            ("granted", "exit", "out"),
        ):
            append_event(
                s,
                Event(
                    occurred_at=now,
                    kind="presentation",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    direction=direction,
                    person_id=site.tanaka,
                    decision=decision,
                    reason=reason,
                    escort_person_id=site.tanaka,
                    purpose="保守",
                ),
            )
        # four-eyes requests: one for the manager to decide, one carried out, one for the CLI
        from db.approvals import Actor, decide, request_approval
        from db.models import ApprovalKind, Operator

        ops = {o.username: Actor.of(o) for o in s.scalars(select(Operator))}
        request_approval(s, ApprovalKind.UNLOCK, {"credential_id": 1}, ops["manager2"], "鍵")
        done = request_approval(
            s, ApprovalKind.PURGE, {"log": "events", "before": "2020-01-01"}, ops["manager2"]
        )
        decide(s, done.id, ops["manager"], True, "了解")
        s.commit()
    return site


PAGES = {
    "manager": [
        "/dashboard",
        "/events/",
        "/authorizations/",
        "/people/",
        "/people/?kind=all",
        "/people/new",
        "/people/1",
        "/people/1/edit",
        "/visitors/",
        "/visitors/?q=佐藤",
        "/alarms/",
        "/simulator/",
        "/incidents/",
        "/incidents/?state=all",
        "/incidents/1",
        "/review/",
        "/approvals/",
        "/approvals/?all=1",
        "/account",
        "/reauth",
        "/reports/monthly",
        f"/reports/monthly?month={utcnow().astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m}",
    ],
    "guard": ["/incidents/", "/incidents/1", "/occupancy/", "/account", "/mfa/enrol"],
    "auditor": ["/audit/", "/audit/verify", "/admin/", "/review/", "/reports/monthly"],
    "administrator": ["/admin/", "/approvals/"],
    "anonymous": ["/login", "/no-such-page"],
}


def test_japanese_pages_have_no_untranslated_text(app: Flask, busy_site: Site, auth: Auth) -> None:
    problems = {}
    for role, paths in PAGES.items():
        auth.client.delete_cookie("nyutai_session")
        if role != "anonymous":
            auth.login(role)
        for path in paths:
            html = auth.client.get(path).text
            assert 'lang="ja"' in html
            # the scan must really see the page: its heading and the text after it
            h1 = html.split("<h1>")[1].split("</h1>")[0].strip()
            seen = visible_text(html)
            assert h1 in seen and len(seen) - seen.index(h1) >= 2
            words = english_words(html)
            if words:
                problems[f"{role} {path}"] = sorted(words)
    assert problems == {}


def test_detector_catches_an_untranslated_string(app: Flask, site: Site, auth: Auth) -> None:
    # the check above is only worth something if it sees English text when there is some
    assert english_words("<p>ログイン</p><p>Sign in</p><code>sr-in</code>") == {"Sign", "in"}


def test_english_is_selectable(app: Flask, busy_site: Site, auth: Auth) -> None:
    auth.login("manager")
    auth.post("/language", {"locale": "en", "next": "/events/"})
    html = auth.client.get("/dashboard").text
    assert 'lang="en"' in html
    assert "Inside now" in html and "Latest events" in html and "Access granted." in html
    assert "現在の在室者" not in html
    auth.post("/language", {"locale": "ja", "next": "/"})
    assert "現在の在室者" in auth.client.get("/dashboard").text
