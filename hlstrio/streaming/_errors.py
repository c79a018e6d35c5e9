"""Domain errors of the streaming layer: what went wrong, never how HTTP says it.

The web layer maps each class to a status and a JSON error code in one table
(`hlstrio.web._errors`); the streaming layer only raises these.
"""

from __future__ import annotations


class StreamingError(Exception):
    """A request the streaming layer cannot answer with bytes."""


class SessionEnded(StreamingError):
    """The session was ended (DELETE, replacement, ttl, shutdown) while a request used it."""


class SegmentNotFound(StreamingError):
    """No such rendition, or a segment index outside the playlist."""


class SegmentNotReady(StreamingError):
    """The segment did not exist within `segment_wait`; the client should retry."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class EncoderGaveUp(StreamingError):
    """The session's encoder failed `encoder_retries` + 1 times in a row."""


class SegmentMissing(StreamingError):
    """The encoder finished without making a segment the playlist lists."""


class CutFailed(StreamingError):
    """An in-process cut could not read the source (file changed or unreadable)."""


class MediaRemoved(StreamingError):
    """The session's media file left the library; the session ends after saying so."""


class CutError(Exception):
    """Inside an in-process cut (a worker thread): the segment could not be made (file changed
    or unreadable). One line for the client; the session turns it into CutFailed."""
