"""Pure parts of the browser channel: settings validation, origin rule, message parsing, limits."""

from __future__ import annotations

import pytest

from channels.browser_voice import (
    BrowserVoiceInput,
    BrowserVoiceSettings,
    ProtocolError,
    TokenBucket,
    origin_allowed,
    parse_control,
    parse_hello,
)


def test_defaults_need_no_config() -> None:
    channel = BrowserVoiceInput.from_credentials(None)
    assert channel.name() == "browser_voice"
    assert channel.settings == BrowserVoiceSettings()
    assert BrowserVoiceInput.from_credentials({}).settings.jwt_key is None


@pytest.mark.parametrize(
    ("creds", "key"),
    [
        ({"max_frame_byte": 10}, "browser_voice.max_frame_byte"),
        ({"max_frame_bytes": "big"}, "browser_voice.max_frame_bytes"),
        ({"max_frame_bytes": 0}, "browser_voice.max_frame_bytes"),
        ({"output_sample_rate": 8000}, "browser_voice.output_sample_rate"),
        ({"allowed_origins": ["example.com"]}, "browser_voice.allowed_origins"),
        ({"voice": {"stt": {"beam_size": "x"}}}, "browser_voice.voice.stt.beam_size"),
    ],
)
def test_bad_settings_name_the_key(creds: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        BrowserVoiceInput.from_credentials(creds)


def test_origins_from_a_comma_separated_env_value() -> None:
    s = BrowserVoiceSettings.from_dict({"allowed_origins": "https://a.example, https://b.example"})
    assert s.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "bot:5005", (), True),  # not a browser
        ("http://bot:5005", "bot:5005", (), True),  # the widget page itself
        ("http://evil.example", "bot:5005", (), False),
        ("https://shop.example", "bot:5005", ("https://shop.example",), True),
        ("https://SHOP.example/", "bot:5005", ("https://shop.example",), True),
        ("https://shop.example.evil", "bot:5005", ("https://shop.example",), False),
        ("null", "bot:5005", (), False),
        ("http://any.example", "bot:5005", ("*",), True),
    ],
)
def test_origin_rule(origin: str | None, host: str, allowed: tuple, ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok


def test_hello_defaults_and_normalization() -> None:
    h = parse_hello(
        {"type": "hello", "protocol": 1, "timezone": "Mars/Olympus", "language": "en-US"}, 24000
    )
    assert len(h.session_id) == 32 and h.timezone is None and h.language == "en"
    assert h.mode == "hands_free" and h.greet is True and h.output_sample_rate == 24000


def test_wrong_protocol_version_closes_with_4409() -> None:
    with pytest.raises(ProtocolError) as e:
        parse_hello({"type": "hello", "protocol": 2}, 24000)
    assert e.value.close_code == 4409


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[]", "bad_message"),
        ("{", "bad_json"),
        ('{"type": 3}', "bad_message"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "text", "text": ""}', "bad_message"),
        ('{"type": "playback_done", "id": 5}', "bad_message"),
    ],
)
def test_control_messages_of_the_wrong_shape(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_control(raw, 100)
    assert e.value.code == code and e.value.close_code is None


def test_token_bucket_allows_bursts_then_limits() -> None:
    b = TokenBucket(rate=10, burst=20, now=0.0)
    assert all(b.take(now=0.0) for _ in range(20))
    assert not b.take(now=0.0)
    assert b.take(now=0.1)  # one token back after 100 ms
    assert not b.take(now=0.1)
