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
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANTIPASSBACK_MODES = ("off", "alert", "enforce")
ESCORT_POLICIES = ("named", "any")
OFFLINE_MODES = ("cached", "fail_secure")
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


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
    timezone: str = "Asia/Tokyo"
    # where the database, keys, snapshots and reports live; relative to the file's folder.
    # Empty: the file's folder. Under systemd: "/var/lib/nyutai" (the only writable place).
    data_dir: str = ""


@dataclass(frozen=True)
class DatabaseSection:
    url: str = "sqlite:///nyutai.db"


@dataclass(frozen=True)
class ControllerSection:
    gpio_backend: str = "sim"
    command_poll_seconds: float = 0.25
    pin_max_attempts: int = 5
    duress_alarm: bool = True
    snapshot_dir: str = "snapshots"
    demo: bool = False  # enables the web simulator panel and sim taps from the web
    alarm_outputs_active_low: bool = False  # siren/lamp relays that switch on a low level


@dataclass(frozen=True)
class WebSection:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key_file: str = "secret_key"
    idle_timeout_minutes: int = 30
    default_locale: str = "ja"


@dataclass(frozen=True)
class EvidenceSection:
    """Where the evidence duties keep their files (relative paths are in the data directory)."""

    key_file: str = "keys/checkpoint.key"  # Ed25519 checkpoint key, 0600, never in the DB
    report_dir: str = "reports"
    certificate_dir: str = "certificates"
    backup_dir: str = "backups"
    backups_keep: int = 7


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

    def data_path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.data_dir / p

    def reader_door(self, reader_id: str) -> tuple[str, str] | None:
        """(door code, direction 'in'/'out') of a reader, or None if no door uses it."""
        for code, door in self.doors.items():
            if door.entry_reader == reader_id:
                return code, "in"
            if door.exit_reader == reader_id:
                return code, "out"
        return None


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
    if cfg.evidence.backups_keep < 1:
        raise ConfigError(p, "evidence.backups_keep", "a whole number of at least 1")
    if cfg.controller.pin_max_attempts < 1:
        raise ConfigError(p, "controller.pin_max_attempts", "a whole number of at least 1")
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


__all__ = ["ConfigError", "SiteConfig", "load_config", "resolve_database_url"]
