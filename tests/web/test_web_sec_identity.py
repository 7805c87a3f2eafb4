"""Issue 12, defect 5: a person's identity (name, kana, organization) never changes silently.

A guard re-registering a repeat visitor under another name rewrote the name shown on all
their past events, with no audit row. Decision: the guard may correct it (a typo at the desk
is common), and the change is audited with before and after, like the people page's edits.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from db.models import AuditLog, Person
from tests.web.conftest import Auth, Site
from tests.web.test_web_visitors import _form


def test_renaming_a_visitor_at_the_desk_is_audited(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    assert auth.post("/visitors/", _form(site), page="/visitors/").status_code == 302
    with session_factory() as s:
        visitor = s.scalars(select(Person).where(Person.kind == "visitor")).one()
    again = _form(
        site,
        visitor_id=str(visitor.id),
        name="別人 花子",
        name_kana="べつじん はなこ",
        organization="別会社",
    )
    assert auth.post("/visitors/", again, page="/visitors/").status_code == 302
    with session_factory() as s:
        rows = s.scalars(
            select(AuditLog).where(
                AuditLog.action == "person.update", AuditLog.target_id == str(visitor.id)
            )
        ).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.username == "guard"
    assert row.before["name"] == "山田 太郎" and row.after["name"] == "別人 花子"
    assert row.before["organization"] == "保守サービス株式会社"
    assert row.after["organization"] == "別会社" and row.after["name_kana"] == "べつじん はなこ"


def test_an_unchanged_repeat_visit_writes_no_identity_row(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    auth.post("/visitors/", _form(site), page="/visitors/")
    with session_factory() as s:
        visitor = s.scalars(select(Person).where(Person.kind == "visitor")).one()
    auth.post("/visitors/", _form(site, visitor_id=str(visitor.id)), page="/visitors/")
    with session_factory() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert "person.update" not in actions and actions.count("visit.create") == 2
