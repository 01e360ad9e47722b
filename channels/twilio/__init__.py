"""Helpers of the Twilio Media Streams channel: config, TwiML, tokens, wire protocol, transport."""
