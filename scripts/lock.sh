#!/usr/bin/env bash
# Re-resolves requirements/base.in into requirements/lock.txt for Python 3.11 and 3.10.
# Needs python3.11 and python3.10 on PATH (PY311/PY310 to override). Takes ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY311=${PY311:-python3.11}
PY310=${PY310:-python3.10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY311" -m venv "$tmp/v311"
"$tmp/v311/bin/pip" install -q pip==26.3
"$tmp/v311/bin/pip" install -q -r requirements/base.in
"$tmp/v311/bin/pip" freeze --all | grep -viE '^(rasa|rasa-sdk|rasa_sdk|pip)==' >"$tmp/freeze311.txt"
"$PY310" -m venv "$tmp/v310"
"$tmp/v310/bin/pip" install -q pip==26.3
"$tmp/v310/bin/pip" install -q --dry-run --ignore-installed --report "$tmp/report310.json" \
  -r requirements/base.in
"$tmp/v311/bin/python" scripts/lock_markers.py "$tmp/freeze311.txt" "$tmp/report310.json" \
  >requirements/lock.txt
echo "==> requirements/lock.txt updated; review with git diff"
