"""Card ids as typed or read: normalisation, and waiting for an enrolment presentation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.commands import CommandKind, enqueue
from db.models import Command, CommandState, Door, Technology
from db.types import utcnow
from domain import cards


class CardIdError(ValueError):
    """A typed card id does not fit its technology (message translated)."""


def normalise_card_id(technology: str, raw: str) -> tuple[str, str]:
    """(technology, card id) in the stored form by the one rule (domain.cards); raises
    CardIdError with the reason in the operator's language."""
    try:
        return cards.normalise_card_id(technology, raw)
    except cards.CardIdError as exc:
        raise CardIdError(_card_error_text(exc, technology)) from None


def _card_error_text(exc: cards.CardIdError, technology: str) -> str:
    if exc.code == "unknown_technology":
        return _("unknown card technology")
    if exc.code == "wiegand_format":
        return _("Wiegand ids look like FACILITY:NUMBER, e.g. 12:34567")
    if exc.code == "empty":
        return _("the card id is empty")
    lengths = cards.lengths_text(Technology(technology))
    return _("expected %(lengths)s hexadecimal digits", lengths=lengths)


def reader_choices(session: Session) -> list[str]:
    """Reader ids an operator can enrol at: the site's readers, or the doors' readers."""
    site = current_app.config.get("NYUTAI_SITE")
    if site is not None and site.readers:
        return sorted(site.readers)
    ids: set[str] = set()
    for entry, exit_ in session.execute(select(Door.entry_reader, Door.exit_reader)):
        ids.update(r for r in (entry, exit_) if r)
    return sorted(ids)


def start_enrolment(session: Session, reader: str, operator_id: int) -> Command:
    timeout = current_app.config["NYUTAI_ENROL_TIMEOUT_SECONDS"]
    return enqueue(session, CommandKind.ENROL, {"reader": reader, "timeout": timeout}, operator_id)


@dataclass
class EnrolStatus:
    state: str  # waiting / done / failed / timeout / refused (visitors: a registered card)
    technology: str | None = None
    card_id: str | None = None
    remaining: int = 0


def enrolment_status(cmd: Command) -> EnrolStatus:
    timeout = int((cmd.payload or {}).get("timeout", 30))
    if cmd.state == CommandState.DONE:
        result: dict[str, Any] = cmd.result or {}
        if result.get("card_id") and result.get("technology"):
            return EnrolStatus("done", str(result["technology"]), str(result["card_id"]))
        return EnrolStatus("timeout")
    if cmd.state == CommandState.FAILED:
        return EnrolStatus("failed")
    waited = utcnow() - cmd.created_at
    if waited > timedelta(seconds=timeout + 5):  # the controller did not answer at all
        return EnrolStatus("timeout")
    return EnrolStatus("waiting", remaining=max(0, int(timeout - waited.total_seconds())))
