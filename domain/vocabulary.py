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


# Remote door control from the console (issue 13): the event kind of its rows, and the
# device_status kind under which the controller keeps each area's lockdown (key = area code),
# loaded again at start so a restart neither lifts nor forgets a lockdown.
DOOR_CONTROL_EVENT = "door_control"
LOCKDOWN_STATUS = "lockdown"


class LockdownState(enum.StrEnum):
    ACTIVE = "locked_down"  # every card refused at the area's doors; leaving stays free
    LIFTED = "lifted"


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


class NotificationState(enum.StrEnum):
    QUEUED = "queued"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry
    NOT_SENT = "not_sent"  # no mail server configured, or no address: recorded, not retried


class NotificationKind(enum.StrEnum):
    BADGE_ISSUED = "badge_issued"
    FIRST_ENTRY = "first_entry"


class SessionStage(enum.StrEnum):
    """How far a console sign-in has got (web_sessions.stage)."""

    FULL = "full"  # signed in: password and, where enrolled, the second factor
    MFA = "mfa"  # password right; the TOTP or recovery code is still to come
    ENROL = "enrol"  # password right; an administrator or manager must enrol TOTP first


class ApprovalState(enum.StrEnum):
    """An approval request (four eyes): asked by one operator, decided by another."""

    PENDING = "pending"
    APPROVED = "approved"  # decided; a command-line operation still waits to be carried out
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # withdrawn by the requester
    EXPIRED = "expired"  # not decided (or, approved for the command line, not used) in time
    DONE = "done"  # carried out (by the console on approval, or once by the command line)


class ApprovalKind(enum.StrEnum):
    """The operations that need a second person."""

    AUTHORIZATION = "authorization.approve"  # approve (or re-approve) an authorization
    AUTHORIZATION_CHANGE = "authorization.change"  # change the terms of an approved one
    ADMINISTRATOR = "operator.administrator"  # create, promote or reactivate an administrator
    MANAGER = "operator.manager"  # create, promote or reactivate a manager (an approver)
    RETENTION = "retention.set"  # change the contract end or the retention period
    PURGE = "retention.purge"  # purge records after retention (carried out by the CLI)
    UNLOCK = "credential.unlock"  # unlock a card locked after wrong PINs
    MFA_RESET = "operator.mfa_reset"  # remove another operator's second factor
    REVIEW = "review.decide"  # an access-review decision carried out by the CLI
