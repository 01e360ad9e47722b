"""The seam between a VoiceSession and a wire (Twilio Media Streams, browser WebSocket, ...)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    """What a VoiceSession needs from a wire.

    Transports turn wire frames into 16 kHz PCM16 and call ``session.feed_audio``; they call
    ``session.segment_played(segment_id)`` once a segment ended with ``end_segment`` was heard
    (Twilio ``mark`` echo, browser ``playback_done``).
    """

    output_sample_rate: int
    """PCM16 rate the transport wants bot audio in (Twilio 8000, browser 24000/16000)."""

    async def send_audio(self, pcm16: bytes, segment_id: str) -> None:
        """Sends one chunk of bot audio (mono PCM16 LE at ``output_sample_rate``) of a segment."""
        ...

    async def end_segment(self, segment_id: str) -> None:
        """Marks the end of a segment (one sentence); playback confirmation comes later."""
        ...

    async def clear_audio(self) -> None:
        """Barge-in: stops playback now and drops queued audio."""
        ...

    async def send_event(self, event: dict[str, Any]) -> None:
        """Sends a JSON event (``{"type": "vad"|"partial"|"transcript"|...}``); may be ignored."""
        ...

    async def hang_up(self) -> None:
        """Ends the conversation on the wire after the last audio was heard."""
        ...


class NullTransport:
    """A transport that drops everything and confirms playback at once (tests, text-only use)."""

    def __init__(self, output_sample_rate: int = 16000) -> None:
        self.output_sample_rate = output_sample_rate

    async def send_audio(self, pcm16: bytes, segment_id: str) -> None:
        """Drops audio."""

    async def end_segment(self, segment_id: str) -> None:
        """Drops the mark."""

    async def clear_audio(self) -> None:
        """Nothing to clear."""

    async def send_event(self, event: dict[str, Any]) -> None:
        """Drops the event."""

    async def hang_up(self) -> None:
        """Nothing to hang up."""
