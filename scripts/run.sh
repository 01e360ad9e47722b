#!/usr/bin/env bash
# Starts the action server and the Rasa server (all channels in credentials.yml) and prints the URLs.
# Ctrl-C stops both. Settings come from the environment (the Makefile sets working defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/log

pids=()
stop() {
  local code=${1:-0}
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$code"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

wait_for() {  # url, name, pid
  for _ in $(seq 1 480); do
    if curl -fsS -o /dev/null "$1"; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then echo "error: the $2 exited; see the log above" >&2; return 1; fi
    sleep 0.5
  done
  echo "error: the $2 did not answer at $1 within 240 s" >&2; return 1
}

# Check the settings first, so a wrong DATABASE_URL or REDIS_HOST fails by name, not by hanging.
.venv/bin/python deploy/preflight.py actions
.venv/bin/python deploy/preflight.py rasa

.venv/bin/rasa run actions --actions actions --port "$ACTION_PORT" &
pids+=($!)
api=(--enable-api)
[ -n "${RASA_TOKEN:-}" ] && api+=(--auth-token "$RASA_TOKEN")
.venv/bin/rasa run --model models --port "$RASA_PORT" --endpoints endpoints.yml \
  --credentials credentials.yml "${api[@]}" &
pids+=($!)

wait_for "http://localhost:$ACTION_PORT/health" "action server" "${pids[0]}"
wait_for "http://localhost:$RASA_PORT/" "Rasa server" "${pids[1]}"
base="http://localhost:$RASA_PORT"
cat <<MSG

  The assistant is up.
    Browser voice widget:  $base/webhooks/browser_voice/
    Phone (Twilio) webhook: $base/webhooks/twilio_media/voice   (see docs/phone.md)
    REST:  curl -XPOST $base/webhooks/rest/webhook -d '{"sender":"me","message":"what time is it"}'
    Action server: http://localhost:$ACTION_PORT/health
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}" || true
echo "error: a server stopped; shutting down the other" >&2
stop 1
