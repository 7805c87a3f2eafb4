"""Reader errors: one base class, each also the builtin it resembles."""


class ReaderError(Exception):
    """Base class of every reader error."""


class ReaderConfigError(ReaderError, ValueError):
    """A reader URL names an unknown scheme or carries a bad parameter."""


class FrameError(ReaderError, ValueError):
    """Bytes from a reader did not form a valid frame (bad checksum, parity, length...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
