"""The rasa-sdk action server: time, weather, reminders, chat (``rasa run actions``)."""

from actions.services.lifecycle import attach_to_action_server

attach_to_action_server()
