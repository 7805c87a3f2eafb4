"""Checks of the site file that need the parts: reader URLs and the GPIO backend.

The configuration package is a leaf and knows only the file's shape; the controller, which
composes readers and hardware, checks here that the file names parts that exist. Errors are
the same ``ConfigError`` (file, key, what was expected) as the file's own checks.
"""

from __future__ import annotations

from domain.config import ConfigError, SiteConfig
from hardware import BACKENDS
from readers.registry import check_site_readers


def check_wiring(cfg: SiteConfig) -> SiteConfig:
    """Raise ConfigError for an unknown GPIO backend or a reader URL no driver accepts."""
    if cfg.controller.gpio_backend not in BACKENDS:
        raise ConfigError(
            cfg.path, "controller.gpio_backend", f"one of {', '.join(sorted(BACKENDS))}"
        )
    check_site_readers(cfg)
    return cfg
