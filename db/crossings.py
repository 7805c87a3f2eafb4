"""What counts as a crossing: one definition for every report and page.

A crossing is a *granted* presentation with a direction (in or out) and a person, whose
door was actually used. When the door was released but never opened, the controller
writes a later ``not_used`` row naming the grant (``detail.granted_event_id``): that grant
put nobody in or out, so it is no entry, no exit, no "last entry" and nobody "inside".
The monthly report (entries per person, visitors' entries, still inside at day end), the
access review and the authorizations page all take their conditions from here, so a
visitor cannot show two entries in one table and one in another.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from db.models import Decision, Direction, Door, Event


def event_area() -> ColumnElement[int]:
    """The event's area: its own ``area_id``, else its door's (the caller outer-joins Door)."""
    return func.coalesce(Event.area_id, Door.area_id)


def unused_grant_ids() -> Select[tuple[int]]:
    """Ids of grants whose door never opened, each named by a ``not_used`` row.

    Read through ix_events_reason_occurred: ``not_used`` rows are few, so the database
    builds this set once per query (an uncorrelated ``NOT IN``), whatever the log's size.
    NULLs are left out: one NULL in a ``NOT IN`` list would make the test unknown for every row.
    """
    gid = Event.detail["granted_event_id"].as_integer()
    return select(gid).where(Event.reason == "not_used", gid.is_not(None))


def crossing() -> tuple[ColumnElement[bool], ...]:
    """Conditions (to AND together) for an entry or exit crossing that really happened."""
    return (
        Event.decision == Decision.GRANTED,
        Event.person_id.is_not(None),
        Event.direction.in_([Direction.IN, Direction.OUT]),
        Event.id.not_in(unused_grant_ids()),
    )


def entry() -> tuple[ColumnElement[bool], ...]:
    """Conditions for an entry crossing (a used, granted ``in``)."""
    return (*crossing(), Event.direction == Direction.IN)
