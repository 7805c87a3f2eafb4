"""Incidents page: list, evidence, closing with cause and prevention, snapshot images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.eventlog import append_event
from db.incidents import open_incident_for_alarm
from db.models import Alarm, AuditLog, Event, Incident, Snapshot
from db.types import utcnow
from tests.web.conftest import Auth, Site

# smallest valid PNG (1x1), so the file served is a real image
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@pytest.fixture
def incident(site: Site, data_dir: Path, session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """A forced-door alarm with its incident, one evidence event and one camera image."""
    (data_dir / "snapshots").mkdir()
    (data_dir / "snapshots" / "forced.png").write_bytes(PNG)
    now = utcnow()
    with session_factory() as s:
        snap = Snapshot(
            taken_at=now, camera="cam-sr", path="snapshots/forced.png", sha256="ab" * 32
        )
        s.add(snap)
        s.flush()
        ev = append_event(
            s,
            Event(
                occurred_at=now,
                kind="door_forced",
                door_id=site.sr_door,
                area_id=site.server_room,
                decision="info",
                reason="door_forced",
                snapshot_id=snap.id,
            ),
        )
        s.flush()
        alarm = Alarm(
            kind="door_forced",
            door_id=site.sr_door,
            raised_at=now,
            event_id=ev.id,
            snapshot_id=snap.id,
        )
        s.add(alarm)
        s.flush()
        inc = open_incident_for_alarm(s, alarm, [ev.id], [])
        assert inc is not None
        s.commit()
        return {"id": inc.id, "snapshot": snap.id, "event": ev.id}


def _incident(session_factory: sessionmaker[Session], incident_id: int) -> Incident:
    with session_factory() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        s.expunge(inc)
        return inc


def _audit_rows(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).where(AuditLog.action == "incident.close")) or 0)


def test_list_shows_open_incident_with_evidence(auth: Auth, incident: dict[str, Any]) -> None:
    auth.login("guard")
    html = auth.client.get("/incidents/").text
    assert f'id="incident-{incident["id"]}"' in html
    assert "扉のこじ開け" in html and "記録 1 件・画像 1 枚" in html
    # closed list does not have it yet
    assert f'id="incident-{incident["id"]}"' not in auth.client.get("/incidents/?state=closed").text


def test_view_shows_evidence_and_a_guard_has_no_close_form(
    auth: Auth, incident: dict[str, Any]
) -> None:
    auth.login("guard")
    html = auth.client.get(f"/incidents/{incident['id']}").text
    assert "サーバ室 扉" in html
    assert f"/incidents/snapshots/{incident['snapshot']}" in html
    assert 'id="close-form"' not in html


def test_guard_and_auditor_cannot_close(
    auth: Auth, incident: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    for role in ("guard", "auditor"):
        auth.client.delete_cookie("nyutai_session")
        auth.login(role)
        resp = auth.post(
            f"/incidents/{incident['id']}/close",
            {"cause": "原因", "prevention": "対策"},
            page="/incidents/",
        )
        assert resp.status_code == 403
    assert _incident(session_factory, incident["id"]).state == "open"
    assert _audit_rows(session_factory) == 0


@pytest.mark.parametrize(
    "form", [{"cause": "", "prevention": "対策"}, {"cause": "原因", "prevention": "  "}, {}]
)
def test_closing_without_both_notes_is_refused_and_saves_nothing(
    auth: Auth,
    incident: dict[str, Any],
    session_factory: sessionmaker[Session],
    form: dict[str, str],
) -> None:
    auth.login("manager")
    resp = auth.post(f"/incidents/{incident['id']}/close", form, page="/incidents/")
    assert resp.status_code == 302
    page = auth.client.get(resp.headers["Location"]).text
    assert "原因と再発防止策の両方を記入してください。" in page
    inc = _incident(session_factory, incident["id"])
    assert inc.state == "open" and inc.cause is None and inc.closed_at is None
    assert _audit_rows(session_factory) == 0


def test_manager_closes_and_the_page_shows_cause(
    auth: Auth, incident: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    auth.login("manager")
    assert 'id="close-form"' in auth.client.get(f"/incidents/{incident['id']}").text
    resp = auth.post(
        f"/incidents/{incident['id']}/close",
        {"cause": "清掃業者が扉を押し開けた", "prevention": "清掃時は警備員が立ち会う"},
        page="/incidents/",
    )
    assert resp.status_code == 302
    inc = _incident(session_factory, incident["id"])
    assert inc.state == "closed" and inc.cause == "清掃業者が扉を押し開けた"
    assert _audit_rows(session_factory) == 1
    html = auth.client.get(f"/incidents/{incident['id']}").text
    assert "清掃業者が扉を押し開けた" in html and "清掃時は警備員が立ち会う" in html
    assert "責任 花子" in html  # who closed it
    assert 'id="close-form"' not in html
    assert f'id="incident-{incident["id"]}"' in auth.client.get("/incidents/?state=closed").text
    # closing again is refused, nothing changes
    again = auth.post(
        f"/incidents/{incident['id']}/close",
        {"cause": "別の原因", "prevention": "別の対策"},
        page="/incidents/",
    )
    assert "すでに完了" in auth.client.get(again.headers["Location"]).text
    assert _incident(session_factory, incident["id"]).cause == "清掃業者が扉を押し開けた"
    assert _audit_rows(session_factory) == 1


def test_close_without_csrf_token_is_refused(
    auth: Auth, incident: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    auth.login("manager")
    resp = auth.client.post(
        f"/incidents/{incident['id']}/close", data={"cause": "原因", "prevention": "対策"}
    )
    assert resp.status_code == 400
    assert _incident(session_factory, incident["id"]).state == "open"


def test_snapshot_is_served_to_a_guard(auth: Auth, incident: dict[str, Any]) -> None:
    auth.login("guard")
    resp = auth.client.get(f"/incidents/snapshots/{incident['snapshot']}")
    assert resp.status_code == 200
    assert resp.data == PNG and resp.mimetype == "image/png"


def test_snapshot_needs_a_login_and_a_role(
    app: Flask, auth: Auth, incident: dict[str, Any]
) -> None:
    resp = auth.client.get(f"/incidents/snapshots/{incident['snapshot']}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    auth.login("administrator")
    assert auth.client.get(f"/incidents/snapshots/{incident['snapshot']}").status_code == 403


def test_snapshot_refuses_unknown_ids(auth: Auth, incident: dict[str, Any]) -> None:
    auth.login("manager")
    assert auth.client.get(f"/incidents/snapshots/{incident['snapshot'] + 100}").status_code == 404
    # no path is accepted in the URL at all: only the integer id routes
    assert auth.client.get("/incidents/snapshots/..%2F..%2Fetc%2Fpasswd").status_code == 404


@pytest.mark.parametrize(
    "stored",
    [
        "../secret.txt",
        "/etc/passwd",
        "snapshots/../../secret.txt",
        "../data-sibling/secret.txt",  # shares the data dir's name as a string prefix
    ],
)
def test_snapshot_never_serves_files_outside_data_dir(
    auth: Auth,
    incident: dict[str, Any],
    data_dir: Path,
    session_factory: sessionmaker[Session],
    stored: str,
) -> None:
    (data_dir.parent / "secret.txt").write_text("top secret")
    (data_dir.parent / "data-sibling").mkdir()
    (data_dir.parent / "data-sibling" / "secret.txt").write_text("top secret")
    with session_factory() as s:
        snap = Snapshot(taken_at=utcnow(), camera="x", path=stored, sha256="0" * 64)
        s.add(snap)
        s.commit()
        snap_id = snap.id
    auth.login("manager")
    resp = auth.client.get(f"/incidents/snapshots/{snap_id}")
    assert resp.status_code == 404
    assert b"top secret" not in resp.data and b"root:" not in resp.data


def test_snapshot_symlink_out_of_data_dir_is_refused(
    auth: Auth, incident: dict[str, Any], data_dir: Path, session_factory: sessionmaker[Session]
) -> None:
    (data_dir.parent / "secret.txt").write_text("top secret")
    (data_dir / "snapshots" / "link.png").symlink_to(data_dir.parent / "secret.txt")
    with session_factory() as s:
        snap = Snapshot(taken_at=utcnow(), camera="x", path="snapshots/link.png", sha256="0" * 64)
        s.add(snap)
        s.commit()
        snap_id = snap.id
    auth.login("manager")
    resp = auth.client.get(f"/incidents/snapshots/{snap_id}")
    assert resp.status_code == 404 and b"top secret" not in resp.data
