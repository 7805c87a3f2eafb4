"""The site file (TOML): database, areas, doors, readers, GPIO, cameras, timings.

A malformed file, an unknown key or a wrong type stops start-up with a ``ConfigError``
naming the file, the key and what was expected. This module is a leaf: it knows the file's
shape, not the parts. Reader URLs and GPIO backends are checked where the controller
composes its parts (``controller.wiring.check_wiring``), with the same error.
Area and door policy values here seed the database on first start; afterwards an
administrator edits them in the web console and the database wins (the file keeps the
wiring: reader URLs, pins, cameras).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ANTIPASSBACK_MODES = ("off", "alert", "enforce")
ESCORT_POLICIES = ("named", "any")
OFFLINE_MODES = ("cached", "fail_secure")
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
# The site's zone when the file names none: the one place this default is written. Every
# other module gets the zone handed down (``SiteConfig.zone``), so a site elsewhere works.
DEFAULT_TIMEZONE = "Asia/Tokyo"
# The controller id of a site with one controller (a file without [controller] id, doors
# without ``controller``): existing site files and the demo keep working unchanged.
DEFAULT_CONTROLLER_ID = "main"


class ConfigError(ValueError):
    """The site file is wrong; the message names the file, the key and what was expected."""

    def __init__(self, path: Path | str, key: str, expected: str) -> None:
        self.path = str(path)
        self.key = key
        self.expected = expected
        super().__init__(f"{path}: {key}: {expected}")


@dataclass(frozen=True)
class SiteSection:
    name: str = "nyutai"
    # IANA name: schedules, calendar days and months, and every time shown are in this zone
    timezone: str = DEFAULT_TIMEZONE
    # where the database, keys, snapshots and reports live; relative to the file's folder.
    # Empty: the file's folder. Under systemd: "/var/lib/nyutai" (the only writable place).
    data_dir: str = ""


@dataclass(frozen=True)
class DatabaseSection:
    url: str = "sqlite:///nyutai.db"


@dataclass(frozen=True)
class ControllerSection:
    # this controller's id: it runs the doors whose ``controller`` names it (docs/controller.md)
    id: str = DEFAULT_CONTROLLER_ID
    gpio_backend: str = "sim"
    command_poll_seconds: float = 0.25
    pin_max_attempts: int = 5
    duress_alarm: bool = True
    snapshot_dir: str = "snapshots"
    demo: bool = False  # enables the web simulator panel and sim taps from the web
    alarm_outputs_active_low: bool = False  # siren/lamp relays that switch on a low level


MAX_WEB_PROCESSES = 32


@dataclass(frozen=True)
class WebSection:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key_file: str = "secret_key"
    idle_timeout_minutes: int = 30
    default_locale: str = "ja"
    # a console session ends this long after sign-in, however active (ASVS 3.3.1)
    session_lifetime_hours: int = 12
    # four-eyes steps need the password or a TOTP code entered within this many minutes
    reauth_minutes: int = 5
    # addresses (or networks, "10.0.0.0/24") of the TLS reverse proxies in front of the
    # console: only requests from them may say, in X-Forwarded-For/-Proto, who the client is
    # and that it came over TLS (docs/reverse-proxy.md). Empty: no proxy is believed.
    trusted_proxies: list[str] = field(default_factory=list)
    # console processes sharing the port, one per core to spare (web/serve.py)
    processes: int = 1


@dataclass(frozen=True)
class EvidenceSection:
    """Where the evidence duties keep their files (relative paths are in the data directory)."""

    key_file: str = "keys/checkpoint.key"  # Ed25519 checkpoint key, 0600, never in the DB
    report_dir: str = "reports"
    certificate_dir: str = "certificates"
    backup_dir: str = "backups"
    backups_keep: int = 7


MAIL_SECURITY = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class MailSection:
    """The SMTP server for host notifications. No ``host``: nothing is sent and each
    notification is recorded as not sent (no mail server); nothing else changes."""

    TOML_KEYS: ClassVar[dict[str, str]] = {"from": "sender"}  # "from" is a Python keyword

    host: str = ""
    port: int = 0  # 0: 465 for ssl, 587 for starttls, 25 for none
    sender: str = ""  # [mail] from = "nyutai@example.jp"
    security: str = "starttls"  # none / starttls / ssl
    user: str = ""
    password_file: str = ""  # a file holding only the password (relative: data directory)
    timeout_seconds: float = 10.0
    max_attempts: int = 6  # then the notification is marked failed (shown on the status page)

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587}.get(self.security, 25)


@dataclass(frozen=True)
class AreaSection:
    name: str
    name_en: str = ""
    permitted_devices: list[str] = field(default_factory=list)
    antipassback: str = "enforce"
    escort_policy: str = "any"
    visitor_exit_needs_escort: bool = True
    max_visitors_per_escort: int = 3
    two_person_rule: bool = False
    # while the database is away: "cached" (decide from memory) or "fail_secure" (deny)
    offline: str = "cached"


@dataclass(frozen=True)
class GpioSection:
    strike: int | str | None = None
    contact: int | str | None = None
    rex: int | str | None = None
    tamper: int | str | None = None
    strike_active_low: bool = False
    contact_active_low: bool = False
    rex_active_low: bool = False
    tamper_active_low: bool = False


@dataclass(frozen=True)
class DoorSection:
    area: str
    name: str
    entry_reader: str | None = None
    exit_reader: str | None = None
    exit_button: bool = False
    strike_seconds: float = 5.0
    held_open_seconds: float = 30.0
    pin_required: bool = False
    pin_timeout_seconds: float = 10.0
    escort_window_seconds: float = 10.0
    ask_purpose: bool = False
    snapshot_on_entry: bool = False
    camera: str | None = None
    # the controller that runs this door (its readers, strike, contact, camera); a site file
    # may describe the whole site. None: the file's own [controller] id.
    controller: str | None = None
    gpio: GpioSection = field(default_factory=GpioSection)


@dataclass(frozen=True)
class ReaderSection:
    url: str
    debounce_seconds: float = 2.0


@dataclass(frozen=True)
class CameraSection:
    url: str
    buffer_seconds: float = 3.0


@dataclass(frozen=True)
class SiteConfig:
    path: Path
    data_dir: Path
    site: SiteSection = field(default_factory=SiteSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    controller: ControllerSection = field(default_factory=ControllerSection)
    web: WebSection = field(default_factory=WebSection)
    evidence: EvidenceSection = field(default_factory=EvidenceSection)
    mail: MailSection = field(default_factory=MailSection)
    areas: dict[str, AreaSection] = field(default_factory=dict)
    doors: dict[str, DoorSection] = field(default_factory=dict)
    readers: dict[str, ReaderSection] = field(default_factory=dict)
    cameras: dict[str, CameraSection] = field(default_factory=dict)
    alarm_outputs: dict[str, int | str] = field(default_factory=dict)
    # 4(2) 用件の確認: purpose codes typed at doors with ask_purpose, e.g. {"1": "保守作業"}
    purposes: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return resolve_database_url(self.database.url, self.data_dir)

    @property
    def zone(self) -> ZoneInfo:
        """The site's time zone (checked when the file was loaded)."""
        return load_zone(self.site.timezone)

    def data_path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.data_dir / p

    @property
    def controller_id(self) -> str:
        """The id of the controller this file (as loaded) runs."""
        return self.controller.id

    def door_controller(self, code: str) -> str:
        """The id of the controller that owns door ``code``."""
        return self.doors[code].controller or self.controller.id

    def controller_ids(self) -> list[str]:
        """Every controller the file names (its own first)."""
        ids = [self.controller.id]
        for code in self.doors:
            c = self.door_controller(code)
            if c not in ids:
                ids.append(c)
        return ids

    def for_controller(self, controller_id: str | None = None) -> SiteConfig:
        """The file as one controller process sees it: only the doors it owns, their readers
        and cameras (areas, people and policy stay site-wide). Readers and cameras no door
        uses stay with the file's own controller. ``controller_id`` overrides the file's
        ``[controller] id`` (``nyutai controller --id``)."""
        me = controller_id or self.controller.id
        owner = {code: self.door_controller(code) for code in self.doors}
        doors = {c: d for c, d in self.doors.items() if owner[c] == me}
        used_readers = {
            r: owner[c]
            for c, d in self.doors.items()
            for r in (d.entry_reader, d.exit_reader)
            if r is not None
        }
        used_cameras = {d.camera: owner[c] for c, d in self.doors.items() if d.camera}
        file_id = self.controller.id
        readers = {r: sec for r, sec in self.readers.items() if used_readers.get(r, file_id) == me}
        cameras = {c: sec for c, sec in self.cameras.items() if used_cameras.get(c, file_id) == me}
        # pin every door's owner down: the view's own [controller] id becomes ``me``
        doors = {c: dataclasses.replace(d, controller=me) for c, d in doors.items()}
        return dataclasses.replace(
            self,
            controller=dataclasses.replace(self.controller, id=me),
            doors=doors,
            readers=readers,
            cameras=cameras,
            # the alarm outputs are wired to the file's own controller
            alarm_outputs=dict(self.alarm_outputs) if me == file_id else {},
        )

    def reader_door(self, reader_id: str) -> tuple[str, str] | None:
        """(door code, direction 'in'/'out') of a reader, or None if no door uses it."""
        return self._reader_doors.get(reader_id)

    @functools.cached_property
    def _reader_doors(self) -> dict[str, tuple[str, str]]:
        # looked up on every presentation: a dict, not a walk over the doors
        placed: dict[str, tuple[str, str]] = {}
        for code, door in self.doors.items():  # the first door that names it, as before
            if door.entry_reader:
                placed.setdefault(door.entry_reader, (code, "in"))
            if door.exit_reader:
                placed.setdefault(door.exit_reader, (code, "out"))
        return placed


def load_zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError (with the name) if there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfo raises KeyError for an unknown name, ValueError for a malformed one and
        # OSError for a folder of zones ("America"): all the same mistake in a site file
        raise ValueError(f"no time zone named {name!r}") from None


def resolve_database_url(url: str, data_dir: Path) -> str:
    """Relative SQLite paths are relative to the data directory, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        rel = url[len(prefix) :]
        if rel and rel != ":memory:":
            return prefix + str((data_dir / rel).resolve())
    return url


# --- loading -------------------------------------------------------------------------------


def load_config(path: Path | str, *, data_dir: Path | str | None = None) -> SiteConfig:
    """Read and check a site file. ``data_dir`` overrides ``[site] data_dir`` (which defaults
    to the file's directory)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "the file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", f"valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "(encoding)", "a UTF-8 text file") from None
    return parse_config(raw, path, Path(data_dir) if data_dir else None)


def parse_config(raw: dict[str, Any], path: Path, data_dir: Path | None) -> SiteConfig:
    values = _build_fields(SiteConfig, raw, path, "", skip={"path", "data_dir"})
    if data_dir is None:
        site: SiteSection = values.get("site", SiteSection())
        data_dir = path.parent / site.data_dir if site.data_dir else path.parent
    cfg = SiteConfig(path=path, data_dir=data_dir.resolve(), **values)
    _check_semantics(cfg)
    return cfg


def _build_fields(
    cls: type, raw: Any, path: Path, prefix: str, skip: set[str] | None = None
) -> dict[str, Any]:
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(raw, dict):
        raise ConfigError(path, where, "a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in (skip or set())}
    renames: dict[str, str] = getattr(cls, "TOML_KEYS", {})
    if renames:  # keys the file spells differently from the field (a Python keyword)
        spelled = {field_name: key for key, field_name in renames.items()}
        for key in raw:
            if key in spelled:
                raise ConfigError(path, prefix + key, f"a known key (write {spelled[key]!r})")
        raw = {renames.get(k, k): v for k, v in raw.items()}
    for key in raw:
        if key not in fields:
            raise ConfigError(path, prefix + key, f"a known key (one of: {', '.join(fields)})")
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name in raw:
            out[name] = _convert(hints[name], raw[name], path, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(path, prefix + name, "a value (this key is required)")
    return out


def _convert(tp: Any, value: Any, path: Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for opt in options:
            try:
                return _convert(opt, value, path, key)
            except ConfigError:
                continue
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        raise ConfigError(path, key, names)
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(path, key, "a table")
        return {k: _convert(val_tp, v, path, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(path, key, "a list")
        return [_convert(item_tp, v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return tp(**_build_fields(tp, value, path, key + "."))  # type: ignore[operator,arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, key, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, key, "a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, key, "a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, key, "a string")
        return value
    raise ConfigError(path, key, f"a value of type {tp}")  # pragma: no cover - schema bug


def _check_semantics(cfg: SiteConfig) -> None:
    p = cfg.path
    try:
        load_zone(cfg.site.timezone)
    except ValueError:
        raise ConfigError(
            p,
            "site.timezone",
            f"an IANA time zone name such as {DEFAULT_TIMEZONE!r} "
            f"({cfg.site.timezone!r} is not one)",
        ) from None
    if cfg.evidence.backups_keep < 1:
        raise ConfigError(p, "evidence.backups_keep", "a whole number of at least 1")
    mail = cfg.mail
    if mail.security not in MAIL_SECURITY:
        raise ConfigError(p, "mail.security", f"one of {MAIL_SECURITY}")
    if mail.host and "@" not in mail.sender:
        raise ConfigError(p, "mail.from", "the sender's address (needed when mail.host is set)")
    if mail.password_file and not mail.user:
        raise ConfigError(p, "mail.user", "a user name (a password_file is given)")
    if not 0 <= mail.port <= 65535:
        raise ConfigError(p, "mail.port", "a port number (1-65535, or 0 for the default)")
    if mail.max_attempts < 1 or mail.timeout_seconds <= 0:
        raise ConfigError(p, "mail", "max_attempts >= 1 and a positive timeout_seconds")
    for key in ("idle_timeout_minutes", "session_lifetime_hours", "reauth_minutes"):
        if getattr(cfg.web, key) < 1:
            raise ConfigError(p, f"web.{key}", "a whole number of at least 1")
    if not 1 <= cfg.web.processes <= MAX_WEB_PROCESSES:
        raise ConfigError(p, "web.processes", f"a whole number from 1 to {MAX_WEB_PROCESSES}")
    _check_code(p, "controller.id", cfg.controller.id)
    if cfg.controller.pin_max_attempts < 1:
        raise ConfigError(p, "controller.pin_max_attempts", "a whole number of at least 1")
    for i, proxy in enumerate(cfg.web.trusted_proxies):
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                p,
                f"web.trusted_proxies[{i}]",
                f"an IP address or network such as 127.0.0.1 or 10.0.0.0/24 ({proxy!r} is not)",
            ) from None
    for code, area in cfg.areas.items():
        _check_code(p, f"areas.{code}", code)
        if area.antipassback not in ANTIPASSBACK_MODES:
            raise ConfigError(p, f"areas.{code}.antipassback", f"one of {ANTIPASSBACK_MODES}")
        if area.escort_policy not in ESCORT_POLICIES:
            raise ConfigError(p, f"areas.{code}.escort_policy", f"one of {ESCORT_POLICIES}")
        if area.offline not in OFFLINE_MODES:
            raise ConfigError(p, f"areas.{code}.offline", f"one of {OFFLINE_MODES}")
        if area.max_visitors_per_escort < 1:
            raise ConfigError(p, f"areas.{code}.max_visitors_per_escort", "at least 1")
    for code in cfg.purposes:
        if not (code.isascii() and code.isdigit() and 1 <= len(code) <= 4):
            raise ConfigError(p, f"purposes.{code}", "a code of 1 to 4 digits")
    for reader_id in cfg.readers:
        _check_code(p, f"readers.{reader_id}", reader_id)
    used: dict[str, str] = {}
    for code, door in cfg.doors.items():
        _check_code(p, f"doors.{code}", code)
        if door.area not in cfg.areas:
            raise ConfigError(
                p, f"doors.{code}.area", f"an area defined under [areas] ({door.area!r} is not)"
            )
        for side in ("entry_reader", "exit_reader"):
            rid = getattr(door, side)
            if rid is None:
                continue
            if rid not in cfg.readers:
                raise ConfigError(
                    p, f"doors.{code}.{side}", f"a reader defined under [readers] ({rid!r} is not)"
                )
            if rid in used:
                raise ConfigError(
                    p, f"doors.{code}.{side}", f"a reader not already used by door {used[rid]!r}"
                )
            used[rid] = code
        if door.entry_reader is None:
            raise ConfigError(
                p, f"doors.{code}.entry_reader", "a reader id (every door needs an entry reader)"
            )
        if door.exit_reader is None and not door.exit_button:
            raise ConfigError(p, f"doors.{code}", "an exit_reader or exit_button = true")
        if door.ask_purpose and not cfg.purposes:
            raise ConfigError(p, f"doors.{code}.ask_purpose", "a [purposes] table of codes to type")
        if door.controller is not None:
            _check_code(p, f"doors.{code}.controller", door.controller)
        if door.camera is not None and door.camera not in cfg.cameras:
            raise ConfigError(
                p,
                f"doors.{code}.camera",
                f"a camera defined under [cameras] ({door.camera!r} is not)",
            )
        for name in (
            "strike_seconds",
            "held_open_seconds",
            "escort_window_seconds",
            "pin_timeout_seconds",
        ):
            if getattr(door, name) <= 0:
                raise ConfigError(p, f"doors.{code}.{name}", "a positive number of seconds")


def _check_code(path: Path, key: str, code: str) -> None:
    if not code or not set(code) <= CODE_CHARS:
        raise ConfigError(path, key, "an identifier of lowercase letters, digits, '-' and '_'")


__all__ = [
    "DEFAULT_CONTROLLER_ID",
    "DEFAULT_TIMEZONE",
    "ConfigError",
    "SiteConfig",
    "load_config",
    "resolve_database_url",
    "load_zone",
]
