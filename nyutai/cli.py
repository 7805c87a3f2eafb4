"""The ``nyutai`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from controller.wiring import check_wiring
from db.files import keep_files_private
from domain.config import MAX_WEB_PROCESSES, ConfigError, SiteConfig, load_config
from domain.vocabulary import Technology

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The site file (TOML).",
)


def _version() -> str:
    """The installed distribution's version (pyproject), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    from nyutai import __version__

    try:
        return version("nyutai")
    except PackageNotFoundError:  # run from a checkout without installing
        return __version__


def _load(config_path: Path) -> SiteConfig:
    try:
        return check_wiring(load_config(config_path))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
@click.version_option(_version(), "--version", prog_name="nyutai", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """nyutai (入退): access control and entry logging for managed areas."""
    # before any subcommand creates a file: the database, reports, keys... are 0600
    keep_files_private()
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
@click.option(
    "--config",
    "--site",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The site file (TOML); it may describe the whole site.",
)
@click.option(
    "--id",
    "controller_id",
    default=None,
    help="This controller's id (default: [controller] id of the file); it runs only the "
    "doors the file gives it.",
)
def controller(config_path: Path, controller_id: str | None) -> None:
    """Run the access controller daemon (doors, readers, alarms)."""
    from controller.service import SchemaOutOfDate, build_controller, run_until_signalled
    from db.controllers import DoorClaimed

    cfg = _load(config_path)
    if controller_id is not None and controller_id not in cfg.controller_ids():
        raise click.ClickException(
            f"unknown_controller: the site file names no controller {controller_id!r} "
            f"(it names: {', '.join(cfg.controller_ids())})"
        )
    try:
        ctl = build_controller(cfg, controller_id)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    try:
        run_until_signalled(ctl)
    except DoorClaimed as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@config_option
@click.option("--host", help="Listen on this address instead of [web] host.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Listen on this port instead of [web] port (several console processes on one "
    "machine behind one proxy: see docs/failover.md).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, MAX_WEB_PROCESSES),
    help="Console processes sharing the port (default [web] processes, 1): one per core.",
)
@click.option("--listen-fd", type=int, hidden=True)  # a child of --processes
def web(
    config_path: Path,
    host: str | None,
    port: int | None,
    processes: int | None,
    listen_fd: int | None,
) -> None:
    """Run the web console."""
    from web.serve import serve

    serve(_load(config_path), host=host, port=port, processes=processes, listen_fd=listen_fd)


def _wait_for_command(
    cfg: SiteConfig, kind: str, payload: dict[str, object], timeout: float
) -> dict[str, object]:
    import time

    from db.commands import CommandKind, enqueue, expire
    from db.engine import make_engine, make_session_factory, session_scope
    from db.models import Command, CommandState

    engine = make_engine(cfg.database_url)
    factory = make_session_factory(engine)

    def answer() -> dict[str, object] | None:
        with session_scope(factory) as s:
            cmd = s.get(Command, cmd_id)
            assert cmd is not None
            if cmd.state in (CommandState.DONE, CommandState.FAILED):
                return {"state": cmd.state, **(cmd.result or {})}
            return None

    with session_scope(factory) as s:
        # the command expires with our patience: a controller that comes back later must
        # not carry out a tap nobody is waiting for any more (issue 13)
        cmd_id = enqueue(s, CommandKind(kind), payload, expires_in=timeout).id
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if (result := answer()) is not None:
                return result
            time.sleep(0.1)
        with session_scope(factory) as s:
            withdrawn = expire(s, cmd_id)
        if not withdrawn:  # taken at the last moment: its answer is on the way
            grace = time.monotonic() + 5
            while time.monotonic() < grace:
                if (result := answer()) is not None:
                    return result
                time.sleep(0.1)
    finally:
        engine.dispose()
    raise click.ClickException(
        f"the controller did not answer within {timeout:g} s: "
        "is 'nyutai controller' (or the demo) running? "
        "The request was withdrawn and will not be carried out later."
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
@click.option(
    "--card", required=True, help="Card id in hex (e.g. 012E4CD1A2B3C4D5) or Wiegand FC:NUMBER."
)
@click.option(
    "--technology",
    type=click.Choice([t.value for t in Technology], case_sensitive=False),
    default=None,
    help="The card's technology; without it, recognised from the id's length "
    "(16 hex digits FeliCa, 8/14/20 ISO 14443A, 10 EM4100, FC:NUMBER Wiegand).",
)
@click.option(
    "--timeout", default=10.0, show_default=True, help="Seconds to wait for the controller."
)
def tap(config_path: Path, reader: str, card: str, technology: str | None, timeout: float) -> None:
    """Present a card at a simulated reader of a running controller."""
    from domain.cards import CardIdError, infer_technology, normalise_card_id

    try:  # the one card-id rule: the id must fit its technology (and be enrollable)
        tech = technology.lower() if technology else infer_technology(card).value
        tech, card_id = normalise_card_id(tech, card)
    except CardIdError as exc:
        raise click.ClickException(f"refused: {exc}") from None
    cfg = _load(config_path)
    if reader not in cfg.readers:
        raise click.ClickException(
            f"no reader {reader!r} in {config_path} (known: {', '.join(cfg.readers)})"
        )
    _print_result(
        _wait_for_command(
            cfg, "tap", {"reader": reader, "card": card_id, "technology": tech}, timeout
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
@click.option(
    "--reset-passwords",
    is_flag=True,
    help="Give the demo's operators new random passwords (and TOTP keys), print them, start.",
)
def demo(data_dir: Path, host: str, port: int, reset_passwords: bool) -> None:
    """Run the demo: controller + web console on SQLite, simulated doors, sample people."""
    from nyutai.runlock import AlreadyRunning, RunLock

    # one demo per data folder: two controllers on one database would fight over the doors
    lock = RunLock(data_dir / "demo.lock")
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise click.ClickException(
            f"a demo is already running on {data_dir.resolve()} (pid {exc.pid}): stop it "
            "(Ctrl-C in its terminal) or give another --data-dir"
        ) from None
    try:
        _run_demo(data_dir, host, port, reset_passwords)
    finally:
        lock.release()


def _run_demo(data_dir: Path, host: str, port: int, reset_passwords: bool) -> None:
    from dataclasses import replace

    from controller.service import build_controller, start_duties
    from db.engine import make_engine, make_session_factory, session_scope
    from db.migrate import upgrade
    from nyutai.demo import (
        DEMO_CARDS,
        UNKNOWN_CARD,
        DemoSecrets,
        prepare_data_dir,
        reset_demo_passwords,
        seed_demo,
    )
    from web.security import read_or_create_secret
    from web.serve import serve

    site = prepare_data_dir(data_dir)
    cfg = _load(site)
    cfg = replace(cfg, web=replace(cfg.web, host=host, port=port))
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        secrets = seed_demo(s, cfg)
        if secrets is None and reset_passwords:
            sealing_key = read_or_create_secret(cfg.data_path(cfg.web.secret_key_file))
            secrets = DemoSecrets(reset_demo_passwords(s, sealing_key), "")
    engine.dispose()
    url = f"http://{host}:{port}/"
    click.echo(f"nyutai demo: data in {data_dir.resolve()}")
    if secrets is not None:
        click.echo("Operator logins (shown only now; add more in the console):")
        for login in secrets.operators:
            key = f"  TOTP key {login.totp_seed}" if login.totp_seed else ""
            click.echo(f"  {login.role:<14} {login.username:<10} {login.password}{key}")
        click.echo(
            "Administrators and managers give a TOTP code after the password: add the key to "
            "an authenticator app, or print the current code with\n"
            "  .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('KEY').now())\""
        )
        if secrets.yamada_pin:
            click.echo(
                f"Sample staff PIN for 山田 太郎 (door mynumber-front): {secrets.yamada_pin}"
            )
    else:
        click.echo(
            "Database already seeded: use the logins printed at the first start. Lost them? "
            f"Stop the demo and run: nyutai demo --data-dir {data_dir} --reset-passwords"
        )
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
        scheduler.stop()
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
