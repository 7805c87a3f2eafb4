"""The domain's vocabulary: the enumerated values every layer speaks.

Stored as short strings in the database (db.models), shown as words in the console, sent in
commands; defined once here, below everything, so no layer has to import another for a name.
"""

from __future__ import annotations

import enum


class PersonKind(enum.StrEnum):
    STAFF = "staff"
    VISITOR = "visitor"


class Technology(enum.StrEnum):
    FELICA = "felica"
    ISO14443A = "iso14443a"
    EM4100 = "em4100"
    WIEGAND = "wiegand"
    OSDP = "osdp"


class CredentialState(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    LOST = "lost"
    BLOCKED = "blocked"
    LOCKED = "locked"  # too many wrong PINs; a manager unlocks
    RETURNED = "returned"  # temporary visitor badge collected at sign-out


class AuthorizationState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


class AntipassbackMode(enum.StrEnum):
    OFF = "off"
    ALERT = "alert"
    ENFORCE = "enforce"


class OfflineMode(enum.StrEnum):
    """What a door of the area does while the database cannot be written."""

    CACHED = "cached"  # decide from the controller's memory; rows journalled on its disk
    FAIL_SECURE = "fail_secure"  # deny everyone (exit buttons still open the door)


class EscortPolicy(enum.StrEnum):
    NAMED = "named"  # only the visit's named escort
    ANY = "any"  # any designated, trained staff authorized for the area


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class Decision(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    PENDING = "pending"  # waiting for PIN or escort; a final row follows
    INFO = "info"  # not an access decision: door state, reader state, exit button


class AlarmState(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class IncidentState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    MANAGER = "manager"
    GUARD = "guard"
    AUDITOR = "auditor"


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # taken by the controller, waiting for something (an enrolment card)
    DONE = "done"
    FAILED = "failed"
