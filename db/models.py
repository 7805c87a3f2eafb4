"""The whole nyutai schema: SQLAlchemy 2 typed models.

The database is the contract between the controller and the web process. Enumerated
values are stored as short strings (checked in Python by the StrEnums below) so that a
new value needs no table rebuild on SQLite.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.types import UTCDateTime, utcnow
from domain.config import DEFAULT_CONTROLLER_ID
from domain.search import KEY_LENGTH, search_key
from domain.vocabulary import (  # noqa: F401 - re-exported: the models' column values
    AlarmState,
    AntipassbackMode,
    ApprovalKind,
    ApprovalState,
    AuthorizationState,
    CommandState,
    CredentialState,
    Decision,
    Direction,
    EscortPolicy,
    IncidentState,
    NotificationState,
    OfflineMode,
    PersonKind,
    Role,
    SessionStage,
    Technology,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
utc = Annotated[datetime, mapped_column(UTCDateTime())]
created = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]
short = Annotated[str, mapped_column(String(64))]
name = Annotated[str, mapped_column(String(200))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


# --- people and credentials -------------------------------------------------------------


def _names(column: str, model: str) -> str:
    """The join of a relationship along an id column that has no foreign key (db.kept)."""
    return f"foreign({column}) == {model}.id"


def _person_search_key(context: Any) -> str:
    """Insert default (ORM and Core inserts alike) from the row's own name and kana."""
    params = context.get_current_parameters()
    return search_key(params.get("name"), params.get("name_kana"))


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (
        # lists in name order (people page, pickers) and "name starts with" (db.search)
        Index("ix_people_kind_name", "kind", "name", "id"),
        Index("ix_people_name", "name"),
        Index("ix_people_name_kana", "name_kana"),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(16), default=PersonKind.STAFF)
    name: Mapped[name]
    name_kana: Mapped[str | None] = mapped_column(String(200))
    organization: Mapped[str | None] = mapped_column(String(200))
    employee_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    # 3(2): designated as handling staff (特定個人情報を取り扱う従業者)
    designated: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created]
    # domain.search.search_key(name, name_kana): what every person search compares with
    # (filled on insert by the default, on update by the listener below); indexed for
    # substring search by db/search.py (FTS5 trigram on SQLite, pg_trgm on PostgreSQL).
    search_key: Mapped[str] = mapped_column(String(KEY_LENGTH), default=_person_search_key)

    credentials: Mapped[list[Credential]] = relationship(back_populates="person")
    trainings: Mapped[list[Training]] = relationship(back_populates="person")
    authorizations: Mapped[list[Authorization]] = relationship(
        back_populates="person", foreign_keys="Authorization.person_id"
    )

    @property
    def is_visitor(self) -> bool:
        return self.kind == PersonKind.VISITOR


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("technology", "card_id"),)

    id: Mapped[intpk]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    technology: Mapped[str] = mapped_column(String(16))
    # uppercase hex (FeliCa IDm, ISO 14443A UID, EM4100 id) or "FC:NUMBER" for Wiegand
    card_id: Mapped[str] = mapped_column(String(64))
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)  # a visitor badge
    label: Mapped[str | None] = mapped_column(String(64))  # printed badge number
    pin_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; never the PIN
    state: Mapped[str] = mapped_column(String(16), default=CredentialState.ACTIVE)
    failed_pin_count: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_at: Mapped[created]

    person: Mapped[Person | None] = relationship(back_populates="credentials")


class Training(Base):
    __tablename__ = "trainings"
    # the latest training of a person, and "trained since" tests, read this index only
    __table_args__ = (Index("ix_trainings_person_completed", "person_id", "completed_on"),)

    id: Mapped[intpk]
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    course: Mapped[name]
    completed_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[created]

    person: Mapped[Person] = relationship(back_populates="trainings")


# --- places -------------------------------------------------------------------------------


class Area(Base):
    """A managed area (管理区域)."""

    __tablename__ = "areas"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[name]
    name_en: Mapped[str | None] = mapped_column(String(200))
    # 4(5): device kinds a visitor may bring in (e.g. ["laptop"]); [] permits none
    permitted_devices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    antipassback: Mapped[str] = mapped_column(String(16), default=AntipassbackMode.ENFORCE)
    escort_policy: Mapped[str] = mapped_column(String(16), default=EscortPolicy.ANY)
    visitor_exit_needs_escort: Mapped[bool] = mapped_column(Boolean, default=True)
    max_visitors_per_escort: Mapped[int] = mapped_column(Integer, default=3)
    two_person_rule: Mapped[bool] = mapped_column(Boolean, default=False)
    # while the database cannot be written: decide from the controller's memory or deny
    offline: Mapped[str] = mapped_column(String(16), default=OfflineMode.CACHED)
    created_at: Mapped[created]

    doors: Mapped[list[Door]] = relationship(back_populates="area")


class Door(Base):
    __tablename__ = "doors"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[name]
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    entry_reader: Mapped[str | None] = mapped_column(String(64))  # reader id from the site file
    exit_reader: Mapped[str | None] = mapped_column(String(64))
    exit_button: Mapped[bool] = mapped_column(Boolean, default=False)
    strike_seconds: Mapped[float] = mapped_column(default=5.0)
    held_open_seconds: Mapped[float] = mapped_column(default=30.0)
    pin_required: Mapped[bool] = mapped_column(Boolean, default=False)
    pin_timeout_seconds: Mapped[float] = mapped_column(default=10.0)
    escort_window_seconds: Mapped[float] = mapped_column(default=10.0)
    ask_purpose: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_on_entry: Mapped[bool] = mapped_column(Boolean, default=False)
    camera: Mapped[str | None] = mapped_column(String(64))
    # the controller that runs this door (claimed at its start-up: db.controllers)
    controller: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[created]

    area: Mapped[Area] = relationship(back_populates="doors")


class Authorization(Base):
    """Person x area: who may enter where (4(2))."""

    __tablename__ = "authorizations"
    __table_args__ = (
        Index("ix_authorizations_person_area", "person_id", "area_id"),
        # the list's page order (keyset) and "who holds this area"
        Index("ix_authorizations_area_person", "area_id", "person_id", "id"),
    )

    id: Mapped[intpk]
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    # {"mon": [["08:00", "20:00"]], ...} in the site's wall time; None = any time
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    default_purpose: Mapped[str | None] = mapped_column(String(200))
    # a row made without a state waits for a second person, never lets anyone in (issue 12)
    state: Mapped[str] = mapped_column(String(16), default=AuthorizationState.PENDING)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    approved_at: Mapped[datetime | None]
    created_at: Mapped[created]

    person: Mapped[Person] = relationship(back_populates="authorizations", foreign_keys=[person_id])
    area: Mapped[Area] = relationship()


class Visit(Base):
    """An outsider's visit (部外者): purpose, host, escort, devices, badge."""

    __tablename__ = "visits"
    # the reception's open visits in expected order, paged
    __table_args__ = (Index("ix_visits_open", "signed_out_at", "expected_from", "id"),)

    id: Mapped[intpk]
    visitor_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    purpose: Mapped[str] = mapped_column(String(500))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    escort_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    id_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    id_kind: Mapped[str | None] = mapped_column(String(64))
    # [{"kind": "laptop", "serial": "SN123"}]
    declared_devices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expected_from: Mapped[datetime]
    expected_until: Mapped[datetime]
    badge_credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    signed_in_at: Mapped[datetime | None]
    signed_out_at: Mapped[datetime | None]
    devices_confirmed_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # the guard's photo of the visitor (a Snapshot row: file named by its SHA-256)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    created_at: Mapped[created]

    visitor: Mapped[Person] = relationship(foreign_keys=[visitor_id])
    host: Mapped[Person | None] = relationship(foreign_keys=[host_id])
    escort: Mapped[Person | None] = relationship(foreign_keys=[escort_id])
    area: Mapped[Area] = relationship()
    badge: Mapped[Credential | None] = relationship()
    photo: Mapped[Snapshot | None] = relationship()


class Notification(Base):
    """An e-mail to a visit's host or escort (badge issued, first entry): a queue with
    retries, so a slow or failing mail server never blocks the guard (issue 13)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("visit_id", "kind", "recipient_person_id"),
        Index("ix_notifications_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[intpk]
    created_at: Mapped[created]
    kind: Mapped[str] = mapped_column(String(32))  # badge_issued, first_entry
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)  # the first granted entry
    recipient_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    recipient_role: Mapped[str] = mapped_column(String(16))  # host, escort
    address: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=NotificationState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None]

    visit: Mapped[Visit] = relationship()
    recipient: Mapped[Person | None] = relationship()


# --- what happened ------------------------------------------------------------------------


class Event(Base):
    """One row per presentation, exit, door or reader happening; the hash-chained log."""

    __tablename__ = "events"
    # Every event-log filter leads one index that ends in the page order (occurred_at, id),
    # so a filtered page is an index range read newest first, never a scan of the log
    # (tests/web/test_web_event_plans.py checks the plans on SQLite and PostgreSQL).
    __table_args__ = (
        Index("ix_events_occurred_id", "occurred_at", "id"),
        Index("ix_events_person_occurred", "person_id", "occurred_at", "id"),
        Index("ix_events_area_occurred", "area_id", "occurred_at", "id"),
        Index("ix_events_door_occurred", "door_id", "occurred_at", "id"),
        Index("ix_events_reason_occurred", "reason", "occurred_at", "id"),
        Index("ix_events_decision_occurred", "decision", "occurred_at", "id"),
        Index("ix_events_visitor_occurred", "visitor", "occurred_at", "id"),
        Index("ix_events_visit_id", "visit_id"),
        Index("ix_events_controller_occurred", "controller", "occurred_at", "id"),
        # one chain per controller: seq is unique within its controller's chain
        UniqueConstraint("controller", "seq", name="uq_events_controller_seq"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # the controller that wrote the row; each controller's rows form their own chain
    # (server default too: a row inserted by hand lands in the default chain, whose
    # verification names it)
    controller: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_CONTROLLER_ID, server_default=DEFAULT_CONTROLLER_ID
    )
    # tamper-evident chain (filled by db.eventlog): position and SHA-256 hex
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))  # presentation, exit_button, door_opened, ...
    # The ids below name rows without foreign keys (db.kept): the log records what the
    # controller decided with what it knew and is never refused for a row changed meanwhile;
    # the rows it names are never deleted, a rule the database itself enforces.
    door_id: Mapped[int | None]
    area_id: Mapped[int | None]
    reader: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str | None] = mapped_column(String(8))
    person_id: Mapped[int | None]
    credential_id: Mapped[int | None]
    technology: Mapped[str | None] = mapped_column(String(16))
    raw_card_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(48))
    purpose: Mapped[str | None] = mapped_column(String(500))
    visitor: Mapped[bool] = mapped_column(Boolean, default=False)
    visit_id: Mapped[int | None]
    escort_person_id: Mapped[int | None]
    escort_event_id: Mapped[int | None] = mapped_column(BigInteger)
    snapshot_id: Mapped[int | None]
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    door: Mapped[Door | None] = relationship(primaryjoin=_names("Event.door_id", "Door"))
    area: Mapped[Area | None] = relationship(primaryjoin=_names("Event.area_id", "Area"))
    person: Mapped[Person | None] = relationship(primaryjoin=_names("Event.person_id", "Person"))
    escort: Mapped[Person | None] = relationship(
        primaryjoin=_names("Event.escort_person_id", "Person")
    )


class Presence(Base):
    """Who is inside which area now: the controller's occupancy, published for the web."""

    __tablename__ = "presence"
    __table_args__ = (
        UniqueConstraint("person_id", "area_id"),
        # who is inside an area, in order of entry, paged; counts per area
        Index("ix_presence_area_entered", "area_id", "entered_at", "id"),
    )

    id: Mapped[intpk]
    # written with every crossing, so without foreign keys, as the events (db.kept)
    person_id: Mapped[int]
    area_id: Mapped[int]
    entered_at: Mapped[datetime]
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    escort_person_id: Mapped[int | None]
    visit_id: Mapped[int | None]

    person: Mapped[Person] = relationship(primaryjoin=_names("Presence.person_id", "Person"))
    escort: Mapped[Person | None] = relationship(
        primaryjoin=_names("Presence.escort_person_id", "Person")
    )


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default=AlarmState.RAISED, index=True)
    silent: Mapped[bool] = mapped_column(Boolean, default=False)  # duress: no siren
    # what the controller knew, without foreign keys, as the events (db.kept): an alarm is
    # never refused for a row changed meanwhile
    door_id: Mapped[int | None]
    area_id: Mapped[int | None]
    reader: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[int | None]
    event_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # "alarms only" filter
    raised_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    ack_comment: Mapped[str | None] = mapped_column(Text)
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    restored_at: Mapped[datetime | None]  # the condition ended (door closed, tamper restored)
    snapshot_id: Mapped[int | None]
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the controller that raised it (None: raised by the web or a job)
    controller: Mapped[str | None] = mapped_column(String(64))

    door: Mapped[Door | None] = relationship(primaryjoin=_names("Alarm.door_id", "Door"))
    area: Mapped[Area | None] = relationship(primaryjoin=_names("Alarm.area_id", "Area"))


class Incident(Base):
    """Section 6: a reportable happening with its evidence, closed by a manager."""

    __tablename__ = "incidents"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.OPEN)
    opened_at: Mapped[datetime]
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    summary: Mapped[str] = mapped_column(Text)
    # {"events": [ids], "snapshots": [ids]}
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cause: Mapped[str | None] = mapped_column(Text)
    prevention: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[intpk]
    taken_at: Mapped[datetime]
    camera: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))  # relative to the data directory
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None]
    height: Mapped[int | None]


# --- operators and their actions ---------------------------------------------------------


class Operator(Base):
    """A web console account (administrator, manager, guard, auditor)."""

    __tablename__ = "operators"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[name]
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    last_login_at: Mapped[datetime | None]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[created]


class WebSession(Base):
    """Server-side login sessions: revocable, with idle timeout and absolute lifetime."""

    __tablename__ = "web_sessions"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the cookie
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[created]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    # a session is usable only at stage "full"; "mfa"/"enrol" wait for the second factor
    stage: Mapped[str] = mapped_column(String(16), default=SessionStage.FULL)
    # the last time the operator proved who they are (password or TOTP): four-eyes steps
    # need it recent (re-authentication)
    reauth_at: Mapped[datetime | None]
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0)


class OperatorMfa(Base):
    """An operator's TOTP second factor (RFC 6238). The seed is stored encrypted with a key
    derived from the console's secret key file, never in clear and never shown again."""

    __tablename__ = "operator_mfa"

    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), primary_key=True)
    secret_enc: Mapped[str] = mapped_column(String(300))  # Fernet token of the base32 seed
    enrolled_at: Mapped[datetime | None]  # None while the enrolment is not yet confirmed
    # the last accepted time step (unix time // 30): a code of that step or older is a replay
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[created]


class RecoveryCode(Base):
    """One-time recovery codes for a lost authenticator: argon2 hashes, each used once."""

    __tablename__ = "recovery_codes"

    id: Mapped[intpk]
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[created]
    used_at: Mapped[datetime | None]


class ApprovalRequest(Base):
    """Four eyes: a dangerous operation asked for by one operator and approved (or rejected)
    by another, both signed in to the console. Carried out on approval, or once by the
    command line (``--approval ID``) for the kinds only it can run (purge)."""

    __tablename__ = "approval_requests"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # what exactly is approved: the CLI must repeat it, the console compares it on approval
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)  # why the requester asks
    state: Mapped[str] = mapped_column(String(16), default=ApprovalState.PENDING, index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # pending: decide by then; approved for the CLI: use by then
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)  # why approved or rejected
    done_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what carrying it out did


class LoginThrottle(Base):
    """Failed sign-ins by key, shared by every web process (db.throttle).

    Keys: ``addr:ADDRESS`` (one client, any name), ``name:USERNAME`` (one name, any client,
    known or not) and ``pair:ADDRESS|USERNAME``. ``failures`` drives a growing delay
    (``blocked_until``); the ``window_*`` columns aggregate failures and refusals for the
    audit log, one summary row per key and window instead of one row per attempt.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    window_failures: Mapped[int] = mapped_column(Integer, default=0)
    window_refused: Mapped[int] = mapped_column(Integer, default=0)
    # the other side of the key seen in the window: addresses for a name, names for an address
    window_detail: Mapped[list[Any] | None] = mapped_column(JSON)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[created]
    last_used_at: Mapped[datetime | None]
    # refused from then on (web.accounts.create_api_token: 90 days unless asked otherwise)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditLog(Base):
    """Every operator action with before/after values (5(3)); hash-chained like events."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    username: Mapped[str | None] = mapped_column(String(64))  # kept even if the operator goes
    action: Mapped[str] = mapped_column(String(64))  # login, login_failed, person.update, ...
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class Checkpoint(Base):
    """A signed (Ed25519) statement of a chain's head at a time (section 9)."""

    __tablename__ = "checkpoints"

    id: Mapped[intpk]
    # "audit", or an events chain: "events" (the default controller) or "events@ID"
    log: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[str] = mapped_column(String(64))  # hex, to tell keys apart


class OccupancySnapshot(Base):
    """Who was inside an area at an instant (a month's bound), as the monthly report found it.

    The report's "still inside at day end" needs who was inside when the month began; from
    the log alone that is a grouped pass over every crossing ever made (the whole history,
    growing every month). The report stores what it found at each month's start and end, so
    the next month starts from here. ``upto_seq`` is the log's head when it was taken: an
    event appended later but dated before ``at`` (a late upload) makes it stale, and the
    report then computes afresh and replaces it.
    """

    __tablename__ = "occupancy_snapshots"
    __table_args__ = (UniqueConstraint("area_id", "at"),)

    id: Mapped[intpk]
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    at: Mapped[datetime]
    upto_seq: Mapped[int] = mapped_column(BigInteger)
    inside: Mapped[list[Any]] = mapped_column(JSON)  # [[person_id, since (µs since 1970 UTC)]]
    created_at: Mapped[created]


class DeletionRecord(Base):
    """5(10): what was purged, who approved, with the chain range it replaced."""

    __tablename__ = "deletion_records"

    id: Mapped[intpk]
    created_at: Mapped[created]
    log: Mapped[str] = mapped_column(String(80))  # a chain name, as Checkpoint.log
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    from_time: Mapped[datetime]
    to_time: Mapped[datetime]
    row_count: Mapped[int] = mapped_column(Integer)
    first_hash: Mapped[str] = mapped_column(String(64))
    last_hash: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    approved_at: Mapped[datetime | None]
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    # Ed25519 signature over db.chain.canonical_deletion(): an unsigned or forged tombstone
    # cannot stand in for deleted rows at verification
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    public_key: Mapped[str | None] = mapped_column(String(64))


class AccessReview(Base):
    """Section 9: a manager's keep/revoke decision on an authorization."""

    __tablename__ = "access_reviews"

    id: Mapped[intpk]
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"))
    finding: Mapped[str] = mapped_column(String(32))  # unused_90d, training_expiring, ...
    decision: Mapped[str] = mapped_column(String(16))  # keep / revoke
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    decided_at: Mapped[datetime]


# --- between processes ---------------------------------------------------------------------


class Command(Base):
    """Web (or CLI) -> controller requests: taps at simulated readers, alarm acks, forgives."""

    __tablename__ = "commands"

    id: Mapped[intpk]
    created_at: Mapped[created]
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    state: Mapped[str] = mapped_column(String(16), default=CommandState.QUEUED, index=True)
    processed_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # not carried out after this (a CLI tap that timed out); see db.commands.claim
    expires_at: Mapped[datetime | None]
    # the controller that carries it out: the owner of its reader or door (db.controllers);
    # None: any controller (a command about no door)
    controller: Mapped[str | None] = mapped_column(String(64))


class Change(Base):
    """The change feed: one row per changed row of a table a door decision depends on.

    Written in the same transaction as the change itself (db.changes records it for every
    ORM flush and bulk statement), so the controller, which keeps the decision facts in
    memory, applies exactly what was committed: every row past the version it has seen.
    ``person_id`` names the person whose facts the row feeds (kept for deleted rows too).
    """

    __tablename__ = "changes"

    version: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    table_name: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    person_id: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime]
    # the controller whose recorder wrote the change (None: the web, the CLI, a job): a
    # controller skips its own presence changes, which its memory already holds
    origin: Mapped[str | None] = mapped_column(String(64))
    # a presence change: the one area it concerned (None: several, or every area, as a
    # guard's forgive): a controller skips presence in areas it has no door in
    area_id: Mapped[int | None]


class ControllerRow(Base):
    """One row per controller process id: its heartbeat and health for the status page.

    ``number`` (1, 2, ...) is given at first registration and never reused: event ids of
    controller n are allocated from ``[(n-1) * 2**40, n * 2**40)`` (db.controllers), so
    several controllers allocate ids in memory without meeting.
    """

    __tablename__ = "controllers"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    # health, written with each heartbeat (off the door thread)
    last_event_at: Mapped[datetime | None]
    journal_backlog: Mapped[int] = mapped_column(Integer, default=0)  # works not yet in the DB
    offline_readers: Mapped[list[Any] | None] = mapped_column(JSON)
    doors: Mapped[list[Any] | None] = mapped_column(JSON)  # door codes it runs


class DeviceStatus(Base):
    """What the controller knows of each reader, door and camera, for dashboards."""

    __tablename__ = "device_status"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(16))  # reader, door, camera, controller
    key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))  # online/offline, locked/open/held, ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_card: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    controller: Mapped[str | None] = mapped_column(String(64))  # who published it


class SiteSetting(Base):
    """Site-wide settings an administrator edits (contract end, retention, end of day)."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


@event.listens_for(Person, "before_update")
def _refresh_person_search_key(_mapper: Any, _conn: Any, person: Person) -> None:
    person.search_key = search_key(person.name, person.name_kana)
