"""Access review findings and a manager's audited keep/revoke decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from db.eventlog import append_event
from db.models import (
    AccessReview,
    Area,
    AuditLog,
    Authorization,
    Event,
    Operator,
    Person,
    Training,
)
from db.review import (
    DESIGNATED_NO_AUTH,
    TRAINING_EXPIRED,
    TRAINING_EXPIRING,
    UNUSED,
    ReviewError,
    record_designation_review,
    record_review,
    review_items,
)
from db.verify import verify_log
from domain.training import valid_through

NOW = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)  # 12:00 on 1 September in Tokyo
TOKYO = ZoneInfo("Asia/Tokyo")
OLD = NOW - timedelta(days=200)


@pytest.fixture
def world(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as s:
        areas = [Area(code="a", name="A室"), Area(code="b", name="B室")]
        people = {
            n: Person(name=n, designated=True)
            for n in ("used", "idle", "expiring", "lapsed", "bare")
        }
        s.add_all([*areas, *people.values()])
        mgr = Operator(username="mgr", display_name="責任者", role="manager", password_hash="x")
        guard = Operator(username="g", display_name="警備", role="guard", password_hash="x")
        s.add_all([mgr, guard])
        s.flush()
        trainings = {"used": date(2026, 5, 1), "idle": date(2026, 5, 1),
                     "expiring": date(2025, 9, 20), "lapsed": date(2025, 8, 1)}  # fmt: skip
        auths = {}
        for n, done in trainings.items():
            s.add(Training(person_id=people[n].id, course="年次研修", completed_on=done))
            a = Authorization(
                person_id=people[n].id, area_id=areas[0].id, created_at=OLD, state="approved"
            )
            s.add(a)
            auths[n] = a
        # a recent authorization is not "unused" yet, even though never used
        auths["new"] = Authorization(
            person_id=people["used"].id,
            area_id=areas[1].id,
            created_at=NOW - timedelta(days=10),
            state="approved",
        )
        s.add(auths["new"])
        s.flush()
        for n in ("used", "expiring", "lapsed"):
            append_event(
                s,
                Event(
                    occurred_at=NOW - timedelta(days=5),
                    kind="presentation",
                    area_id=areas[0].id,
                    person_id=people[n].id,
                    direction="in",
                    decision="granted",
                    reason="granted",
                ),
            )
        s.commit()
        yield s, people, auths, mgr, guard


def test_findings(world) -> None:  # type: ignore[no-untyped-def]
    s, people, auths, *_ = world
    found = {(i.finding, i.person) for i in review_items(s, NOW, zone=TOKYO)}
    assert found == {
        (UNUSED, "idle"),
        (TRAINING_EXPIRING, "expiring"),
        (TRAINING_EXPIRED, "lapsed"),
        (DESIGNATED_NO_AUTH, "bare"),
    }


def test_revoke_is_recorded_and_audited(world) -> None:  # type: ignore[no-untyped-def]
    s, people, auths, mgr, guard = world
    with pytest.raises(ReviewError) as exc:
        record_review(s, guard, auths["idle"].id, UNUSED, "revoke")
    assert exc.value.code == "not_manager"
    with pytest.raises(ReviewError):
        record_review(s, mgr, auths["idle"].id, UNUSED, "delete")
    record_review(s, mgr, auths["idle"].id, UNUSED, "revoke", "異動のため")
    record_review(s, mgr, auths["expiring"].id, TRAINING_EXPIRING, "keep", "受講予定あり")
    record_designation_review(s, mgr, people["bare"].id, "revoke")
    s.commit()
    assert auths["idle"].state == "revoked" and auths["expiring"].state == "approved"
    assert not people["bare"].designated
    rows = s.scalars(select(AccessReview).order_by(AccessReview.id)).all()
    assert [(r.decision, r.decided_by) for r in rows] == [("revoke", mgr.id), ("keep", mgr.id)]
    actions = s.scalars(select(AuditLog.action).order_by(AuditLog.seq)).all()
    assert actions == ["review.revoke", "review.keep", "review.designation_revoke"]
    assert verify_log(s, "audit", None).ok
    # revoking idle's only authorization leaves a designation to review next time
    assert {(i.finding, i.person) for i in review_items(s, NOW, zone=TOKYO)} == {
        (TRAINING_EXPIRING, "expiring"),
        (TRAINING_EXPIRED, "lapsed"),
        (DESIGNATED_NO_AUTH, "idle"),
    }


def test_training_findings_use_the_site_zone_calendar(world) -> None:  # type: ignore[no-untyped-def]
    # trained 2025-08-31: valid through 2026-08-31. NOW is already 1 September in Tokyo but
    # still 31 August (23:00 EDT) in New York, where the training is expiring, not expired.
    s, *_ = world
    p = Person(name="edge", designated=True)
    s.add(p)
    s.flush()
    s.add(Training(person_id=p.id, course="年次研修", completed_on=date(2025, 8, 31)))
    s.add(
        Authorization(
            person_id=p.id, area_id=s.scalars(select(Area.id)).first(), state="approved"
        )
    )
    s.flush()

    def finding(zone: ZoneInfo) -> set[str]:
        return {i.finding for i in review_items(s, NOW, zone=zone) if i.person == "edge"}

    assert finding(TOKYO) == {TRAINING_EXPIRED}
    assert finding(ZoneInfo("America/New_York")) == {TRAINING_EXPIRING}


def test_training_expiry_date() -> None:
    assert valid_through(date(2025, 9, 20)) == date(2026, 9, 20)
    assert valid_through(date(2024, 2, 29)) == date(2025, 2, 28)
