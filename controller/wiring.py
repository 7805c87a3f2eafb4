"""Checks of the site file that need the parts: reader URLs and the GPIO backend.

The configuration package is a leaf and knows only the file's shape; the controller, which
composes readers and hardware, checks here that the file names parts that exist. Errors are
the same ``ConfigError`` (file, key, what was expected) as the file's own checks.
"""

from __future__ import annotations

from domain.config import ConfigError, SiteConfig
from hardware import BACKENDS
from readers.errors import ReaderConfigError
from readers.registry import validate_reader_url


def check_wiring(cfg: SiteConfig) -> SiteConfig:
    """Raise ConfigError for an unknown GPIO backend or a reader URL no driver accepts."""
    if cfg.controller.gpio_backend not in BACKENDS:
        raise ConfigError(
            cfg.path, "controller.gpio_backend", f"one of {', '.join(sorted(BACKENDS))}"
        )
    for reader_id, reader in cfg.readers.items():
        try:
            validate_reader_url(reader.url)
        except ReaderConfigError as exc:
            raise ConfigError(cfg.path, f"readers.{reader_id}.url", str(exc)) from None
    return cfg
