"""Custom Rasa input channels that let people talk to the assistant by voice."""

from channels import sanic_compat

sanic_compat.apply()
