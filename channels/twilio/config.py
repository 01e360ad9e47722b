"""Settings of the ``twilio_media`` channel (the dict under ``twilio_media:`` in credentials.yml).

Every setting has a default that works with no config at all; secrets come from environment
variables when the credentials file leaves them out. A bad key or value raises ``ValueError``
naming the key, e.g. ``twilio_media.max_concurrent_calls: expected int, got 'x'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# Setting name -> environment variable used when the setting is absent or empty.
ENV_VARS: dict[str, str] = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "number": "TWILIO_NUMBER",
    "public_base_url": "PUBLIC_BASE_URL",
    "stream_secret": "VOICE_STREAM_SECRET",
    "outbound_api_token": "OUTBOUND_API_TOKEN",
    "transfer_number": "TWILIO_TRANSFER_NUMBER",
    "api_base_url": "TWILIO_API_BASE_URL",
    "caller_id_salt": "CALLER_ID_SALT",
}


@dataclass(frozen=True)
class CallbackConfig:
    """Reminder call-backs: outbound calls for reminders that fall due while nobody listens."""

    enabled: bool = True
    max_attempts: int = 3
    retry_after_s: float = 300.0  # > ring time + the reminder's first words
    ring_timeout_s: int = 30
    intent: str = "EXTERNAL_reminder"


@dataclass(frozen=True)
class TwilioMediaConfig:
    """All settings of the Twilio Media Streams channel."""

    account_sid: str | None = None
    auth_token: str | None = None
    number: str | None = None
    public_base_url: str | None = None
    stream_secret: str | None = None
    outbound_api_token: str | None = None
    transfer_number: str | None = None
    api_base_url: str | None = None
    caller_id_salt: str | None = None
    validate_signature: bool = True
    hash_caller_ids: bool = False
    max_concurrent_calls: int = 8
    token_ttl_s: float = 60.0
    start_timeout_s: float = 10.0
    stall_timeout_s: float = 20.0
    max_message_bytes: int = 64_000
    dtmf_timeout_s: float = 2.5
    dtmf_max_digits: int = 32
    hangup_grace_s: float = 3.0
    busy_message: str = (
        "Sorry, all our lines are busy right now. Please call again in a few minutes."
    )
    # A keypad turn that is exactly one of these keys reaches Rasa as the mapped text (an intent
    # like "/affirm": "press 1 to confirm"); any other digits reach Rasa as typed ("1234").
    dtmf_map: dict[str, str] = field(default_factory=lambda: {"1": "/affirm", "2": "/deny"})
    voice: dict[str, Any] = field(default_factory=dict)
    callbacks: CallbackConfig = field(default_factory=CallbackConfig)

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
    ) -> TwilioMediaConfig:
        """Builds a validated config, filling secrets from ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        d = dict(d or {})
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in known:
                raise ValueError(
                    f"twilio_media.{key}: unknown setting (known: {', '.join(sorted(known))})"
                )
            if key == "callbacks":
                kwargs[key] = _build_callbacks(value)
            elif key == "dtmf_map":
                if value is None:
                    value = {}
                if not isinstance(value, Mapping) or not all(
                    isinstance(k, str | int) and isinstance(v, str) for k, v in value.items()
                ):
                    raise ValueError(
                        f"twilio_media.dtmf_map: expected a mapping of keys to text, got {value!r}"
                    )
                kwargs[key] = {str(k): v for k, v in value.items()}
            elif key == "voice":
                if value is not None and not isinstance(value, Mapping):
                    raise ValueError(f"twilio_media.voice: expected a mapping, got {value!r}")
                kwargs[key] = dict(value or {})
            else:
                kwargs[key] = _coerce(key, known[key].default, value)
        for key, var in ENV_VARS.items():
            if not kwargs.get(key):
                kwargs[key] = env.get(var) or None
        cfg = cls(**kwargs)
        cfg._check()
        return cfg

    def _check(self) -> None:
        for name in ("max_concurrent_calls", "dtmf_max_digits", "max_message_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"twilio_media.{name}: must be > 0, got {getattr(self, name)!r}")
        for name in ("token_ttl_s", "start_timeout_s", "stall_timeout_s", "dtmf_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"twilio_media.{name}: must be > 0, got {getattr(self, name)!r}")
        if self.hangup_grace_s < 0:
            raise ValueError("twilio_media.hangup_grace_s: must be >= 0")
        for name in ("public_base_url", "api_base_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"twilio_media.{name} ({ENV_VARS[name]}): must start with http:// or "
                    f"https://, got {url!r}"
                )

    def missing_for_calls(self) -> list[str]:
        """Environment variables an outbound call needs but are not set."""
        need = ("account_sid", "auth_token", "number", "public_base_url")
        return [ENV_VARS[n] for n in need if not getattr(self, n)]


def _build_callbacks(value: Any) -> CallbackConfig:
    if value is None:
        return CallbackConfig()
    if not isinstance(value, Mapping):
        raise ValueError(f"twilio_media.callbacks: expected a mapping, got {value!r}")
    known = {f.name: f for f in fields(CallbackConfig)}
    kwargs: dict[str, Any] = {}
    for key, v in value.items():
        if key not in known:
            raise ValueError(
                f"twilio_media.callbacks.{key}: unknown setting (known: {', '.join(sorted(known))})"
            )
        kwargs[key] = _coerce(f"callbacks.{key}", known[key].default, v)
    cfg = CallbackConfig(**kwargs)
    for name in ("retry_after_s", "ring_timeout_s", "max_attempts"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"twilio_media.callbacks.{name}: must be > 0")
    return cfg


def _coerce(key: str, default: Any, value: Any) -> Any:
    path = f"twilio_media.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{path}: expected int, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{path}: expected a number, got {value!r}")
        return float(value)
    # Strings (secrets, URLs, numbers); None or "" means "not set".
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected a string, got {value!r}")
    # Rasa substitutes ${VAR} itself; an unsubstituted placeholder means "not set".
    if value.startswith("${") and value.endswith("}"):
        return None
    return value
