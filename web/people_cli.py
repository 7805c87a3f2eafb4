"""``nyutai people import FILE`` and ``nyutai people export``: the console's staff CSV code
path (web.people_import) from the command line."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.types import utcnow
from domain.config import ConfigError, SiteConfig, load_config
from web.people_import import SHOWN, export_people, import_people
from web.people_words import file_problem_text, row_problem_text

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The site file (TOML).",
)


def _open(config_path: Path) -> tuple[SiteConfig, sessionmaker[Session]]:
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    return cfg, make_session_factory(make_engine(cfg.database_url))


@click.group("people")
def people_group() -> None:
    """Staff in bulk: CSV import (matched on the employee number) and export."""


@people_group.command("import")
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only check the file and show what would change.")
def people_import(config_path: Path, file: Path, dry_run: bool) -> None:
    """Check FILE and, when no row has a problem, save it (UTF-8 or Shift_JIS CSV)."""
    cfg, factory = _open(config_path)
    today = utcnow().astimezone(ZoneInfo(cfg.site.timezone)).date()
    with factory() as db:
        outcome = import_people(
            db,
            file.read_bytes(),
            today,
            apply=not dry_run,
            username=f"cli:{getpass.getuser()}",
            filename=file.name,
        )
    if outcome.file_problem is not None:
        raise click.ClickException(file_problem_text(outcome.file_problem))
    for row, _action in outcome.shown:
        for code, detail in row.problems:
            click.echo(f"line {row.line}: {row_problem_text(code, detail)}", err=True)
    if outcome.problem_rows > len([r for r, _a in outcome.shown if r.problems]):
        click.echo(f"(problems listed for the first {SHOWN} rows only)", err=True)
    summary = (
        f"{outcome.rows} rows: {outcome.created} new, {outcome.updated} updated, "
        f"{outcome.unchanged} unchanged, {outcome.problem_rows} with problems"
    )
    if not outcome.ok:
        raise click.ClickException(summary + "; nothing was saved")
    click.echo(summary + ("; saved" if outcome.applied else "; dry run, nothing saved"))


@people_group.command("export")
@config_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of standard output.",
)
@click.option("--locale", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
def people_export(config_path: Path, output: Path | None, locale: str) -> None:
    """Every staff member in the import format (UTF-8 with BOM)."""
    _cfg, factory = _open(config_path)
    with factory() as db:
        chunks = export_people(db, locale)
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk.encode("utf-8"))
            sys.stdout.flush()
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)
