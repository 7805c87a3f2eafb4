"""The ``nyutai`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from nyutai.config import ConfigError, SiteConfig, load_config

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The site file (TOML).",
)


def _load(config_path: Path) -> SiteConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """nyutai (入退): access control and entry logging for managed areas."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Create or migrate the database to the current schema."""
    from db.migrate import upgrade

    cfg = _load(config_path)
    upgrade(cfg.database_url)
    click.echo("database is at the current schema")


from web.cli import api_token, operators  # noqa: E402

main.add_command(operators)
main.add_command(api_token)
