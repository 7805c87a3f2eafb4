"""``nyutai readers ...``: tools for installers (is every reader wired and answering?)."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import click

from readers.base import Reader
from readers.errors import ReaderError
from readers.events import CardPresented, KeypadInput, ReaderEvent, ReaderOffline, ReaderTamper
from readers.registry import open_reader


@click.group("readers")
def readers_group() -> None:
    """Card readers: check wiring and configuration."""


@readers_group.command("probe")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The site file (TOML).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.5, max=3600),
    default=5.0,
    show_default=True,
    help="How long to listen; present a card meanwhile to see it read.",
)
def probe(config_path: Path, seconds: float) -> None:
    """Open every configured reader for a while and show its state and the last card seen.

    Exits with status 1 if any reader is offline at the end.
    """
    from domain.config import ConfigError, load_config
    from readers.registry import check_site_readers

    try:
        cfg = load_config(config_path)
        check_site_readers(cfg)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    if not cfg.readers:
        raise click.ClickException("the site file defines no [readers]")

    events: queue.Queue[ReaderEvent] = queue.Queue()
    readers: dict[str, Reader] = {}
    for reader_id, section in cfg.readers.items():
        try:
            readers[reader_id] = open_reader(
                reader_id, section.url, events.put, debounce=section.debounce_seconds
            )
        except ReaderError as exc:  # checked at load time already; a driver may still refuse
            raise click.ClickException(f"reader {reader_id}: {exc}") from None
    click.echo(f"listening to {len(readers)} reader(s) for {seconds:g} s ...")
    for reader in readers.values():
        reader.start()
    try:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            _echo_event(event)
        rows = [("reader", "url", "state", "last card", "rejected")]
        offline = 0
        for reader_id, reader in readers.items():  # the state now, before stopping them
            if reader.online:
                state = "online"
            else:
                offline += 1
                state = f"offline ({reader.offline_reason or 'no answer yet'})"
            rejected = getattr(reader, "rejected", None) or {}
            counts = ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())) or "-"
            rows.append((reader_id, reader.url, state, reader.last_card or "-", counts))
    finally:
        for reader in reversed(list(readers.values())):
            reader.stop(timeout=3.0)

    click.echo("")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if offline:
        raise SystemExit(1)


def _echo_event(event: ReaderEvent) -> None:
    if isinstance(event, CardPresented):
        click.echo(f"[{event.reader_id}] card {event.technology} {event.card_id}")
    elif isinstance(event, KeypadInput):
        # never echo the keys: they may be a PIN
        click.echo(f"[{event.reader_id}] keypad: {len(event.keys)} key(s)")
    elif isinstance(event, ReaderOffline):
        click.echo(f"[{event.reader_id}] offline: {event.reason}")
    elif isinstance(event, ReaderTamper):
        click.echo(f"[{event.reader_id}] tamper {'ACTIVE' if event.active else 'cleared'}")
    else:
        click.echo(f"[{event.reader_id}] online")
