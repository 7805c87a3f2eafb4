"""The ``nyutai`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from controller.wiring import check_wiring
from domain.config import ConfigError, SiteConfig, load_config

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The site file (TOML).",
)


def _load(config_path: Path) -> SiteConfig:
    try:
        return check_wiring(load_config(config_path))
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
    if not verbose:
        for chatty in ("alembic", "apscheduler"):  # start-up and per-job chatter
            logging.getLogger(chatty).setLevel(logging.WARNING)


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


@main.command()
@config_option
def controller(config_path: Path) -> None:
    """Run the access controller daemon (doors, readers, alarms)."""
    from controller.service import SchemaOutOfDate, build_controller, run_until_signalled

    cfg = _load(config_path)
    try:
        ctl = build_controller(cfg)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    run_until_signalled(ctl)


@main.command()
@config_option
def web(config_path: Path) -> None:
    """Run the web console."""
    from web.serve import serve

    serve(_load(config_path))


def _wait_for_command(
    cfg: SiteConfig, kind: str, payload: dict[str, object], timeout: float
) -> dict[str, object]:
    import time

    from db.commands import CommandKind, enqueue
    from db.engine import make_engine, make_session_factory, session_scope
    from db.models import Command, CommandState

    engine = make_engine(cfg.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        cmd_id = enqueue(s, CommandKind(kind), payload).id
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with session_scope(factory) as s:
                cmd = s.get(Command, cmd_id)
                assert cmd is not None
                if cmd.state != CommandState.QUEUED:
                    return {"state": cmd.state, **(cmd.result or {})}
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise click.ClickException(
        f"the controller did not answer within {timeout:g} s: "
        "is 'nyutai controller' (or the demo) running?"
    )


def _print_result(result: dict[str, object]) -> None:
    from domain.reasons import sentence

    if result.get("state") == "failed":
        raise click.ClickException(f"refused: {result.get('error')}")
    reason = str(result.get("reason", ""))
    decision = result.get("decision") or "-"
    click.echo(f"{decision}\t{reason}\t{sentence(reason, 'ja')} / {sentence(reason, 'en')}")


@main.command()
@config_option
@click.option("--reader", required=True, help="Reader id from the site file (a sim: reader).")
@click.option("--card", required=True, help="Card id in hex, e.g. 012E4CD1A2B3C4D5.")
@click.option("--technology", default="felica", show_default=True)
@click.option(
    "--timeout", default=10.0, show_default=True, help="Seconds to wait for the controller."
)
def tap(config_path: Path, reader: str, card: str, technology: str, timeout: float) -> None:
    """Present a card at a simulated reader of a running controller."""
    cfg = _load(config_path)
    if reader not in cfg.readers:
        raise click.ClickException(
            f"no reader {reader!r} in {config_path} (known: {', '.join(cfg.readers)})"
        )
    _print_result(
        _wait_for_command(
            cfg, "tap", {"reader": reader, "card": card, "technology": technology}, timeout
        )
    )


@main.command()
@config_option
@click.option("--reader", required=True, help="Reader id from the site file (a sim: reader).")
@click.option("--timeout", default=10.0, show_default=True)
def keypad(config_path: Path, reader: str, timeout: float) -> None:
    """Type keys (a PIN followed by #) at a simulated reader's keypad; asked without echo."""
    cfg = _load(config_path)
    keys = click.prompt("keys", hide_input=True)
    _print_result(_wait_for_command(cfg, "keys", {"reader": reader, "keys": keys}, timeout))


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("nyutai-demo"),
    show_default=True,
    help="Where the demo keeps its site file, database, keys and snapshots.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def demo(data_dir: Path, host: str, port: int) -> None:
    """Run the demo: controller + web console on SQLite, simulated doors, sample people."""
    from dataclasses import replace

    from controller.service import build_controller, start_duties
    from db.engine import make_engine, make_session_factory, session_scope
    from db.migrate import upgrade
    from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD, prepare_data_dir, seed_demo
    from web.serve import serve

    site = prepare_data_dir(data_dir)
    cfg = _load(site)
    cfg = replace(cfg, web=replace(cfg.web, host=host, port=port))
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        secrets = seed_demo(s, cfg)
    engine.dispose()
    url = f"http://{host}:{port}/"
    click.echo(f"nyutai demo: data in {data_dir.resolve()}")
    if secrets is not None:
        click.echo("Operator logins (shown only now; add more with 'nyutai operators create'):")
        for role, (username, password) in secrets.operators.items():
            click.echo(f"  {role:<14} {username:<10} {password}")
        click.echo(f"Sample staff PIN for 山田 太郎 (door mynumber-front): {secrets.yamada_pin}")
    else:
        click.echo("Database already seeded: use the logins printed at the first start.")
    click.echo(
        "Sample cards: "
        + ", ".join(f"{k}={v[1]}" for k, v in DEMO_CARDS.items())
        + f", unknown={UNKNOWN_CARD}"
    )
    click.echo(f"Try: nyutai tap --config {site} --reader sr-in --card {DEMO_CARDS['yamada'][1]}")
    key_file = cfg.data_path(cfg.evidence.key_file)
    if not key_file.exists():
        from db.checkpoints import generate_key

        click.echo(f"Checkpoint signing key created: {key_file} (public {generate_key(key_file)})")
    ctl = build_controller(cfg)
    ctl.start()
    scheduler = start_duties(ctl)
    click.echo(f"Web console: {url}  (Ctrl-C stops both)")
    try:
        serve(cfg)
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=False)
        ctl.stop()
        click.echo("stopped; every strike is locked")


from readers.cli import readers_group  # noqa: E402 - subcommand groups register last

main.add_command(readers_group)
from nyutai import evidence_cli  # noqa: E402,F401  (registers verify, report, purge, keys, ...)
from web.cli import api_token, operators  # noqa: E402

main.add_command(operators)
from web.people_cli import people_group  # noqa: E402

main.add_command(people_group)
main.add_command(api_token)
