#!/usr/bin/env bash
# `rasa shell` with the action server running beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/rasa run actions --actions actions --port "$ACTION_PORT" >var/actions-shell.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
.venv/bin/rasa shell --model models --endpoints endpoints.yml
