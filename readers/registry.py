"""Reader URL scheme -> lazily imported driver (the pyserial / python-can pattern)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from domain.config import ConfigError, SiteConfig
from readers.base import Reader, Sink
from readers.errors import ReaderConfigError

# scheme -> "module:Class"; drivers import their hardware library only when opened
SCHEMES: dict[str, str] = {
    "sim": "readers.sim:SimReader",
    "serial": "readers.serial_reader:SerialReader",
    "nfc": "readers.nfc_reader:NfcReader",
    "osdp": "readers.osdp_reader:OsdpReader",
}


@dataclass(frozen=True)
class ReaderURL:
    scheme: str
    target: str  # everything between "scheme:" and "?"
    params: dict[str, str]


def parse_reader_url(url: str) -> ReaderURL:
    if not isinstance(url, str) or ":" not in url:
        raise ReaderConfigError(f"reader URL {url!r} has no scheme (expected e.g. 'sim:door-a-in')")
    scheme, rest = url.split(":", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ReaderConfigError(f"reader URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    target, _, query = rest.partition("?")
    params: dict[str, str] = {}
    for key, values in parse_qs(query, keep_blank_values=True, strict_parsing=False).items():
        if len(values) != 1:
            raise ReaderConfigError(f"reader URL {url!r}: parameter {key!r} given more than once")
        params[key] = values[0]
    return ReaderURL(scheme, target, params)


def driver_class(scheme: str) -> type[Reader]:
    module_name, _, class_name = SCHEMES[scheme].partition(":")
    module = importlib.import_module(module_name)
    cls: type[Reader] = getattr(module, class_name)
    return cls


def validate_reader_url(url: str) -> ReaderURL:
    """Check a URL at configuration time; drivers may add a ``validate_params`` classmethod."""
    parsed = parse_reader_url(url)
    cls = driver_class(parsed.scheme)
    check = getattr(cls, "validate_params", None)
    if check is not None:
        check(parsed)
    return parsed


def open_reader(reader_id: str, url: str, sink: Sink, **options: Any) -> Reader:
    """Build (not start) the reader thread for ``url``."""
    parsed = validate_reader_url(url)
    cls = driver_class(parsed.scheme)
    return cls(reader_id, url, sink, **options)


def check_site_readers(cfg: SiteConfig) -> None:
    """Raise ConfigError (key ``readers.<id>.url``) for a reader URL no driver accepts."""
    for reader_id, reader in cfg.readers.items():
        try:
            validate_reader_url(reader.url)
        except ReaderConfigError as exc:
            raise ConfigError(cfg.path, f"readers.{reader_id}.url", str(exc)) from None
