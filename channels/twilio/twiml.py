"""TwiML documents the channel answers with (built with the twilio library). Pure functions."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse


def connect_stream(
    stream_url: str, parameters: dict[str, str], *, hang_up_after: bool = True
) -> str:
    """``<Connect><Stream url=…>`` with ``<Parameter>``s; ``<Hangup/>`` runs once we close it."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        if value is not None and value != "":
            stream.parameter(name=name, value=str(value))
    response.append(connect)
    if hang_up_after:
        response.hangup()
    return str(response)


def say_and_hang_up(text: str, *, voice: str | None = None) -> str:
    """Speaks ``text`` with Twilio's own TTS, then hangs up (busy line, misconfiguration)."""
    response = VoiceResponse()
    if voice:
        response.say(text, voice=voice)
    else:
        response.say(text)
    response.hangup()
    return str(response)


def hang_up() -> str:
    """Ends the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def dial(number: str, *, caller_id: str | None = None, timeout_s: int = 30) -> str:
    """Moves the call to ``number`` (a person): used for a transfer."""
    response = VoiceResponse()
    d = Dial(caller_id=caller_id, timeout=timeout_s) if caller_id else Dial(timeout=timeout_s)
    d.number(number)
    response.append(d)
    return str(response)
