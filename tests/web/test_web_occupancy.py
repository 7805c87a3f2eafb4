"""The guard's occupancy page: who is inside, anti-passback refusals, and the audited reset."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from db.eventlog import append_event
from db.models import AuditLog, Command, Event, Presence
from db.types import utcnow
from tests.web.conftest import Auth, Site


def seed(session_factory, site: Site) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        s.add(Presence(person_id=site.tanaka, area_id=site.server_room, entered_at=utcnow()))
        append_event(
            s,
            Event(
                occurred_at=utcnow(),
                kind="presentation",
                direction="out",
                decision="denied",
                reason="antipassback",
                person_id=site.suzuki,
                area_id=site.server_room,
                door_id=site.sr_door,
            ),
        )
        s.commit()


def test_guard_sees_who_is_inside_and_resets_a_refused_person(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    seed(session_factory, site)
    auth.login("guard")
    page = auth.client.get("/occupancy/").get_data(as_text=True)
    assert f'id="inside-{site.tanaka}-{site.server_room}"' in page
    assert "denial-" in page and "入退状態をリセット" in page
    response = auth.post(
        "/occupancy/forgive",
        {"person_id": site.suzuki, "area_id": site.server_room},
        page="/occupancy/",
    )
    assert response.status_code == 302
    with session_factory() as s:
        cmd = s.scalars(select(Command).where(Command.kind == "forgive")).one()
        assert cmd.payload == {"person_id": site.suzuki, "area_id": site.server_room}
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "antipassback.forgive")).one()
        assert audit.username == "guard" and audit.target_id == str(site.suzuki)


def test_auditor_sees_the_page_but_cannot_reset(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    seed(session_factory, site)
    auth.login("auditor")
    page = auth.client.get("/occupancy/").get_data(as_text=True)
    assert "入退状態をリセット" not in page
    assert (
        auth.post("/occupancy/forgive", {"person_id": site.suzuki}, page="/occupancy/").status_code
        == 403
    )
    with session_factory() as s:
        assert s.scalars(select(Command)).all() == []


def test_bad_reset_requests_change_nothing(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    assert (
        auth.post("/occupancy/forgive", {"person_id": "x"}, page="/occupancy/").status_code == 400
    )
    assert (
        auth.post("/occupancy/forgive", {"person_id": 99999}, page="/occupancy/").status_code == 404
    )
    assert (
        auth.post(
            "/occupancy/forgive", {"person_id": site.suzuki, "area_id": 99999}, page="/occupancy/"
        ).status_code
        == 404
    )
    with session_factory() as s:
        assert s.scalars(select(Command)).all() == []
