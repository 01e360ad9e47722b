#!/usr/bin/env bash
# Container entry point: `rasa` (a Rasa worker with every channel in credentials.yml) or
# `actions` (an action server with the reminder dispatcher). Checks the settings and stores
# first (deploy/preflight.py), so a wrong DATABASE_URL or REDIS_HOST fails with its name.
set -euo pipefail
cd /app
role=${1:-rasa}
shift || true
case "$role" in
  rasa)
    python deploy/preflight.py rasa
    api=(--enable-api)
    [ -n "${RASA_TOKEN:-}" ] && api+=(--auth-token "$RASA_TOKEN")
    exec rasa run --model models --port "${RASA_PORT:-5005}" --endpoints endpoints.yml \
      --credentials "${RASA_CREDENTIALS:-credentials.yml}" "${api[@]}" "$@"
    ;;
  actions)
    python deploy/preflight.py actions
    exec rasa run actions --actions actions --port "${ACTION_PORT:-5055}" "$@"
    ;;
  preflight)
    exec python deploy/preflight.py all "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
