"""Card readers named by URL; each is a thread that puts small frozen events on a queue."""

from readers.errors import ReaderConfigError, ReaderError
from readers.events import (
    CardPresented,
    Feedback,
    KeypadInput,
    ReaderEvent,
    ReaderOffline,
    ReaderOnline,
    ReaderTamper,
)
from readers.registry import SCHEMES, open_reader, parse_reader_url, validate_reader_url

__all__ = [
    "SCHEMES",
    "CardPresented",
    "Feedback",
    "KeypadInput",
    "ReaderConfigError",
    "ReaderError",
    "ReaderEvent",
    "ReaderOffline",
    "ReaderOnline",
    "ReaderTamper",
    "open_reader",
    "parse_reader_url",
    "validate_reader_url",
]
