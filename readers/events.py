"""What readers tell the controller: small frozen events, safe to log.

PIN digits never appear in a repr (they would end up in a log); they travel only
as ``KeypadInput.keys`` to the controller's decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CardPresented:
    reader_id: str
    technology: str  # db.models.Technology value
    card_id: str  # uppercase hex, or "FC:NUMBER" for Wiegand
    monotonic: float
    wall: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class KeypadInput:
    """Keys typed at a reader: digits, '#' (enter) and '*' (clear)."""

    reader_id: str
    keys: str = field(repr=False)
    monotonic: float = 0.0
    wall: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReaderOnline:
    reader_id: str


@dataclass(frozen=True, slots=True)
class ReaderOffline:
    reader_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReaderTamper:
    reader_id: str
    active: bool


ReaderEvent = CardPresented | KeypadInput | ReaderOnline | ReaderOffline | ReaderTamper


class Feedback(enum.StrEnum):
    """What a reader shows or sounds after a decision, where its hardware can."""

    GRANTED = "granted"  # green LED, short beep
    DENIED = "denied"  # red LED, long beep
    PIN_WANTED = "pin_wanted"  # amber / blinking: type your PIN
    WAIT = "wait"  # waiting for an escort
    KEY = "key"  # the same acknowledgement for every key (no key can be told apart)
