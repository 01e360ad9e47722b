#!/usr/bin/env bash
# Creates .venv and installs the fully pinned lock, reproducibly and without a resolver surprise.
# Re-running is cheap: it does nothing when the stamp matches the lock files.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
stamp="$VENV/.installed-$(cat requirements/lock.txt requirements/rasa.txt | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0

pick_python() {
  for py in "${PYTHON:-}" python3.11 python3.10 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 11) else 1)'; then
      echo "$py"; return 0
    fi
  done
  echo "error: Python 3.10 or 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  py=$(pick_python)
  echo "==> creating $VENV with $($py --version)"
  "$py" -m venv "$VENV"
fi
echo "==> installing the pinned lock into $VENV (first time: about 5 minutes)"
start=$(date +%s)
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
# Every package is pinned in lock.txt, so --no-deps installs exactly that set: no resolver run.
"$VENV/bin/python" -m pip install --quiet --no-deps -r requirements/lock.txt
# rasa 3.6 and rasa-sdk 3.6 declare Requires-Python <3.11 but run on 3.11; their dependencies
# are all in lock.txt, so they go in last, without their (stale) metadata checks.
"$VENV/bin/python" -m pip install --quiet --no-deps --ignore-requires-python -r requirements/rasa.txt
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "==> installed in $(( $(date +%s) - start )) s"
