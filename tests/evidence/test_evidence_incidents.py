"""Incidents opened from alarms with their evidence, as the controller will call it."""

from __future__ import annotations

from datetime import UTC, datetime

from db.incidents import INCIDENT_ALARM_KINDS, open_incident_for_alarm
from db.models import Alarm, Area, Door, Snapshot
from domain.reasons import AlarmKind


def test_incident_kinds_and_evidence(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        area = Area(code="server-room", name="サーバ室", name_en="Server room")
        s.add(area)
        s.flush()
        door = Door(code="sr", name="サーバ室 扉", area_id=area.id)
        snap = Snapshot(
            taken_at=datetime.now(UTC), camera="cam1", path="snapshots/1.jpg", sha256="0" * 64
        )
        s.add_all([door, snap])
        s.flush()
        forced = Alarm(
            kind=AlarmKind.DOOR_FORCED,
            door_id=door.id,
            raised_at=datetime(2026, 5, 1, tzinfo=UTC),
            event_id=41,
            snapshot_id=snap.id,
        )
        offline = Alarm(kind=AlarmKind.READER_OFFLINE, raised_at=datetime.now(UTC))
        s.add_all([forced, offline])  # not flushed: the controller may call at once
        inc = open_incident_for_alarm(s, forced, [40, 41], [])
        assert inc is not None
        assert inc.alarm_id == forced.id and inc.area_id == area.id  # area found via the door
        assert inc.evidence == {"events": [40, 41], "snapshots": [snap.id]}
        assert (
            inc.state == "open" and "扉のこじ開け" in inc.summary and "サーバ室 扉" in inc.summary
        )
        assert open_incident_for_alarm(s, offline, [], []) is None
    expected = {"door_forced", "door_held", "tamper", "duress", "escort_left_visitor",
                "two_person_violation", "tailgating", "integrity_failure"}  # fmt: skip
    assert {str(k) for k in INCIDENT_ALARM_KINDS} == expected
