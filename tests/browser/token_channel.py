"""A second browser voice endpoint for the tests: same channel class, its own name and settings.

Rasa keys channels by class path, so the tests register this subclass next to the real one to
serve token-protected and tight-limit settings from the same server.
"""

from __future__ import annotations

from channels.browser_voice import BrowserVoiceInput


class StrictBrowserVoiceInput(BrowserVoiceInput):
    """``/webhooks/browser_voice_strict/``: token required, small limits."""

    @classmethod
    def name(cls) -> str:
        """The test endpoint's name."""
        return "browser_voice_strict"
