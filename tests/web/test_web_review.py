"""Access review page: findings from db.review, keep/revoke through the page, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AccessReview, AuditLog, Authorization, Person
from db.types import utcnow
from tests.web.conftest import Auth, Site


@pytest.fixture
def findings(site: Site, session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Tanaka's server-room authorization unused for 100 days; a designated person with no
    authorization; Suzuki's training (seeded 13 months old) has expired."""
    with session_factory() as s:
        auth = s.get(Authorization, site.auth_tanaka)
        assert auth is not None
        auth.approved_at = auth.created_at = utcnow() - timedelta(days=100)
        idle = Person(name="山田 三郎", designated=True, employee_no="E009")
        s.add(idle)
        s.commit()
        return {"unused_auth": auth.id, "designated": idle.id}


def _state(session_factory: sessionmaker[Session], auth_id: int) -> str:
    with session_factory() as s:
        auth = s.get(Authorization, auth_id)
        assert auth is not None
        return auth.state


def test_page_lists_the_findings(auth: Auth, findings: dict[str, int]) -> None:
    auth.login("manager")
    html = auth.client.get("/review/").text
    assert "90日間未使用" in html and "入室記録なし" in html  # tanaka, never entered
    assert "研修期限切れ" in html and "鈴木 花子" in html  # suzuki's expired training
    assert "指定されているが入室権限なし" in html and "山田 三郎" in html
    assert f"/review/authorizations/{findings['unused_auth']}" in html
    assert f"/review/people/{findings['designated']}" in html


def test_auditor_reads_but_has_no_buttons_and_cannot_post(
    auth: Auth, findings: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    auth.login("auditor")
    html = auth.client.get("/review/").text
    assert "90日間未使用" in html
    assert "/review/authorizations/" not in html
    resp = auth.post(
        f"/review/authorizations/{findings['unused_auth']}",
        {"decision": "revoke", "finding": "unused_90d"},
        page="/review/",
    )
    assert resp.status_code == 403
    assert _state(session_factory, findings["unused_auth"]) == "approved"


def test_revoke_sets_the_authorization_revoked_and_audits(
    auth: Auth, findings: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    auth_id = findings["unused_auth"]
    auth.login("manager")
    resp = auth.post(
        f"/review/authorizations/{auth_id}",
        {"decision": "revoke", "finding": "unused_90d", "note": "異動のため"},
        page="/review/",
    )
    assert resp.status_code == 302
    assert _state(session_factory, auth_id) == "revoked"
    with session_factory() as s:
        review = s.scalars(select(AccessReview)).one()
        assert (review.authorization_id, review.decision, review.note) == (
            auth_id,
            "revoke",
            "異動のため",
        )
        row = s.scalars(select(AuditLog).where(AuditLog.action == "review.revoke")).one()
        assert row.target_id == str(auth_id) and row.username == "manager"
        assert row.before == {"state": "approved"} and row.after["state"] == "revoked"
    html = auth.client.get("/review/").text
    assert "取り消しました" in html
    # revoked: no longer an active authorization, so no longer a finding
    assert f'/review/authorizations/{auth_id}"' not in html


def test_keep_records_the_decision_and_leaves_the_authorization(
    auth: Auth, findings: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    auth_id = findings["unused_auth"]
    auth.login("manager")
    auth.post(
        f"/review/authorizations/{auth_id}",
        {"decision": "keep", "finding": "unused_90d"},
        page="/review/",
    )
    assert _state(session_factory, auth_id) == "approved"
    with session_factory() as s:
        assert s.scalars(select(AccessReview.decision)).all() == ["keep"]
        assert s.scalars(select(AuditLog).where(AuditLog.action == "review.keep")).one()
    html = auth.client.get("/review/").text
    assert "維持 · " in html and "責任 花子" in html  # the last decision is shown


def test_revoke_a_designation(
    auth: Auth, findings: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    auth.login("manager")
    auth.post(f"/review/people/{findings['designated']}", {"decision": "revoke"}, page="/review/")
    with session_factory() as s:
        person = s.get(Person, findings["designated"])
        assert person is not None and person.designated is False
        row = s.scalars(
            select(AuditLog).where(AuditLog.action == "review.designation_revoke")
        ).one()
        assert row.target_id == str(findings["designated"])
    assert "山田 三郎" not in auth.client.get("/review/").text


def test_bad_decision_or_finding_changes_nothing(
    auth: Auth, findings: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    auth_id = findings["unused_auth"]
    auth.login("manager")
    for form in (
        {"decision": "delete", "finding": "unused_90d"},
        {"decision": "revoke", "finding": "whatever"},
        {"decision": "revoke"},
    ):
        assert (
            auth.post(f"/review/authorizations/{auth_id}", form, page="/review/").status_code == 400
        )
    resp = auth.post(
        "/review/authorizations/9999",
        {"decision": "revoke", "finding": "unused_90d"},
        page="/review/",
    )
    assert "対象がすでに存在しません" in auth.client.get(resp.headers["Location"]).text
    assert _state(session_factory, auth_id) == "approved"
    with session_factory() as s:
        assert s.scalars(select(AccessReview)).all() == []
        assert s.scalars(select(AuditLog).where(AuditLog.action.like("review.%"))).all() == []
