"""Unit tests of the channel's pure parts: config, tokens, TwiML, signatures, callers, DTMF."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from channels.twilio import callers, security, tokens, twiml
from channels.twilio.config import TwilioMediaConfig
from channels.twilio.dtmf import DtmfCollector, digits_after_pause
from channels.twilio.registry import CallRegistry
from tests.twilio.simulator import sign

TOKEN = "12345678901234567890123456789012"


# --- config -----------------------------------------------------------------------------------


def test_config_defaults_work_with_nothing_set() -> None:
    cfg = TwilioMediaConfig.from_dict(None, env={})
    assert cfg.auth_token is None and cfg.max_concurrent_calls == 8
    assert cfg.missing_for_calls() == [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_NUMBER",
        "PUBLIC_BASE_URL",
    ]


def test_config_reads_secrets_from_env_and_ignores_placeholders() -> None:
    env = {"TWILIO_AUTH_TOKEN": "tok", "PUBLIC_BASE_URL": "https://x.example"}
    cfg = TwilioMediaConfig.from_dict({"auth_token": "${TWILIO_AUTH_TOKEN}"}, env=env)
    assert cfg.auth_token == "tok" and cfg.public_base_url == "https://x.example"


@pytest.mark.parametrize(
    ("d", "key"),
    [
        ({"max_concurent_calls": 3}, "twilio_media.max_concurent_calls"),
        ({"max_concurrent_calls": "3"}, "twilio_media.max_concurrent_calls"),
        ({"max_concurrent_calls": 0}, "twilio_media.max_concurrent_calls"),
        ({"validate_signature": "yes"}, "twilio_media.validate_signature"),
        ({"public_base_url": "abc.ngrok.app"}, "twilio_media.public_base_url"),
        ({"callbacks": {"max_attempts": 0}}, "twilio_media.callbacks.max_attempts"),
        ({"callbacks": {"retries": 2}}, "twilio_media.callbacks.retries"),
        ({"voice": "loud"}, "twilio_media.voice"),
    ],
)
def test_config_errors_name_the_key(d: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        TwilioMediaConfig.from_dict(d, env={})


# --- tokens -----------------------------------------------------------------------------------


def test_stream_token_round_trip_and_binding() -> None:
    tok = tokens.make_stream_token("s3cret", "CA1", 60, now=1000.0, n="+15551234567")
    claims = tokens.verify_stream_token(tok, "s3cret", "CA1", now=1059.0)
    assert claims["n"] == "+15551234567" and claims["cs"] == "CA1"
    with pytest.raises(tokens.TokenError, match="another call"):
        tokens.verify_stream_token(tok, "s3cret", "CA2", now=1001.0)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify_stream_token(tok, "s3cret", "CA1", now=1061.0)
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_stream_token(tok, "other", "CA1", now=1001.0)


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "!!!.???", "e30.AAAA", None, 5])
def test_malformed_tokens_are_rejected(bad: object) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.verify_stream_token(bad, "s3cret", "CA1")  # type: ignore[arg-type]


def test_tampered_claims_are_rejected_and_kinds_do_not_mix() -> None:
    tok = tokens.make_stream_token("s3cret", "CA1", 60, n="+15551234567")
    body, mac = tok.split(".")
    forged = tokens.sign({"cs": "CA1", "n": "+19999999999"}, "guess", kind="stream").split(".")[0]
    with pytest.raises(tokens.TokenError):
        tokens.verify_stream_token(f"{forged}.{mac}", "s3cret", "CA1")
    ctx = tokens.sign({"p": "reminder", "cs": "CA1"}, "s3cret", kind="ctx")
    with pytest.raises(tokens.TokenError, match="kind"):
        tokens.verify_stream_token(ctx, "s3cret", "CA1")
    assert body


# --- TwiML ------------------------------------------------------------------------------------


def test_connect_stream_twiml() -> None:
    doc = twiml.connect_stream(
        "wss://x.example/webhooks/twilio_media/websocket",
        {"token": "t.k", "caller": "+15551234567", "empty": ""},
    )
    root = ET.fromstring(doc)
    assert [v.tag for v in root] == ["Connect", "Hangup"]
    stream = root.find("Connect/Stream")
    assert stream is not None and stream.get("url", "").startswith("wss://x.example/")
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"token": "t.k", "caller": "+15551234567"}


def test_busy_and_dial_twiml() -> None:
    root = ET.fromstring(twiml.say_and_hang_up("Lines are busy & full"))
    assert [v.tag for v in root] == ["Say", "Hangup"] and root[0].text == "Lines are busy & full"
    root = ET.fromstring(twiml.dial("+15557654321", caller_id="+15005550006"))
    assert root.find("Dial/Number").text == "+15557654321"  # type: ignore[union-attr]
    assert root.find("Dial").get("callerId") == "+15005550006"  # type: ignore[union-attr]


# --- signatures and URLs ----------------------------------------------------------------------


def test_webhook_signature_as_twilio_computes_it() -> None:
    url = "https://voice.example.com/webhooks/twilio_media/voice"
    params = {"CallSid": "CA1", "From": "+15551234567", "To": "+15005550006"}
    good = sign(TOKEN, url, params)
    assert security.valid_twilio_signature(TOKEN, url, params, good)
    assert not security.valid_twilio_signature(TOKEN, url, {**params, "From": "+1999"}, good)
    assert not security.valid_twilio_signature(TOKEN, url.replace("https", "http"), params, good)
    assert not security.valid_twilio_signature(TOKEN, url, params, None)
    assert not security.valid_twilio_signature("", url, params, good)


def test_public_url_behind_a_proxy() -> None:
    local = "http://127.0.0.1:5005/webhooks/twilio_media/voice?ctx=abc"
    assert security.public_url(local, None) == local
    assert (
        security.public_url(local, "https://voice.example.com/")
        == "https://voice.example.com/webhooks/twilio_media/voice?ctx=abc"
    )
    assert security.websocket_url("https://a.b/c") == "wss://a.b/c"


def test_websocket_handshake_signature_accepts_wss_and_https_forms() -> None:
    url = "wss://voice.example.com/webhooks/twilio_media/websocket"
    assert security.valid_websocket_signature(TOKEN, url, sign(TOKEN, url))
    https = url.replace("wss://", "https://")
    assert security.valid_websocket_signature(TOKEN, url, sign(TOKEN, https))
    assert not security.valid_websocket_signature(TOKEN, url, sign("x" * 32, url))


def test_bearer() -> None:
    assert security.valid_bearer("Bearer abc", "abc")
    assert security.valid_bearer("bearer  abc ", "abc")
    assert not security.valid_bearer("Bearer abd", "abc")
    assert not security.valid_bearer("Basic abc", "abc")
    assert not security.valid_bearer(None, "abc")
    assert not security.valid_bearer("Bearer abc", None)


# --- callers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("+15551234567", True),
        ("+819012345678", True),
        ("15551234567", False),
        ("+0551234567", False),
        ("+1555", False),
        ("+1234567890123456", False),
        ("+1 555 123 4567", False),
        (None, False),
        (15551234567, False),
    ],
)
def test_e164(number: object, ok: bool) -> None:
    assert callers.is_e164(number) is ok


def test_sender_id_is_stable_per_caller() -> None:
    assert callers.sender_id("+15551234567", "CA1") == "+15551234567"
    h1 = callers.sender_id("+15551234567", "CA1", hashed=True, salt="s")
    h2 = callers.sender_id("+15551234567", "CA2", hashed=True, salt="s")
    assert h1 == h2 and "5551234567" not in h1
    assert callers.sender_id("+15551234567", "CA1", hashed=True, salt="t") != h1
    assert callers.sender_id("anonymous", "CA9") == "twilio-anon-CA9"


def test_person_number_and_metadata_by_direction() -> None:
    inbound = {"From": "+819012345678", "To": "+15005550006", "FromCountry": "JP"}
    outbound = {**inbound, "Direction": "outbound-api", "From": "+15005550006"}
    outbound["To"], outbound["ToCountry"] = "+447700900123", "GB"
    assert callers.person_number(inbound) == "+819012345678"
    assert callers.person_country(inbound) == "JP"
    assert callers.person_number(outbound) == "+447700900123"
    assert callers.person_country(outbound) == "GB"
    meta = callers.rasa_metadata(
        number="+819012345678", country="JP", call_sid="CA1", direction="inbound"
    )
    assert meta == {
        "channel": "twilio_media",
        "caller_number": "+819012345678",
        "caller_country": "JP",
        "call_sid": "CA1",
        "direction": "inbound",
    }


# --- DTMF -------------------------------------------------------------------------------------


def test_dtmf_hash_ends_the_turn() -> None:
    d = DtmfCollector(timeout_s=2.0)
    assert d.press("1", 0.0) is None and d.press("2", 0.5) is None
    assert d.press("#", 0.7) == "12"
    assert d.press("#", 0.8) is None  # nothing pending


def test_dtmf_pause_ends_the_turn_and_star_erases() -> None:
    d = DtmfCollector(timeout_s=2.0)
    d.press("9", 0.0)
    d.press("*", 0.1)
    assert d.pending == "" and d.deadline() is None
    d.press("1", 1.0)
    assert d.due(2.9) is None
    assert d.deadline() == 3.0 and d.due(3.0) == "1"
    assert d.due(10.0) is None


def test_dtmf_max_digits() -> None:
    d = DtmfCollector(max_digits=3)
    assert [d.press(c, 0) for c in "123"] == [None, None, "123"]


# --- registry ---------------------------------------------------------------------------------


def test_registry_capacity_reservations_lapse() -> None:
    now = [0.0]
    reg = CallRegistry(max_calls=2, ttl_s=10, clock=lambda: now[0])
    assert reg.reserve("CA1") and reg.reserve("CA2") and not reg.reserve("CA3")
    assert reg.reserve("CA1")  # Twilio retrying the same call
    assert reg.activate("CA1", "+1555") and not reg.activate("CA1", "+1555")
    assert reg.is_connected("+1555")
    now[0] = 11.0  # CA2's stream never came
    assert reg.load() == 1 and reg.reserve("CA3")
    reg.release("CA1")
    assert not reg.is_connected("+1555") and reg.load() == 1


class _EarlyClock:
    """A clock whose first reading after the wait is a hair before the deadline, as uvloop's
    millisecond clock gives when its timer fires a tick early."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = readings

    def __call__(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


async def test_digits_after_pause_survives_a_timer_that_wakes_early() -> None:
    d = DtmfCollector(timeout_s=0.05)
    d.press("1", 10.0)
    clock = _EarlyClock([10.0, 10.049999, 10.0499995, 10.051])
    assert await digits_after_pause(d, clock) == "1"
    assert d.pending == ""


async def test_digits_after_pause_returns_none_when_the_digits_went_meanwhile() -> None:
    d = DtmfCollector(timeout_s=0.05)
    d.press("1", 10.0)
    waiting = asyncio.ensure_future(digits_after_pause(d, lambda: 10.0))
    await asyncio.sleep(0)
    d.press("*", 10.01)  # erased while waiting
    assert await asyncio.wait_for(waiting, 1) is None
