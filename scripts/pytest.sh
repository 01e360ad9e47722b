#!/usr/bin/env bash
# Runs pytest. Exit code 5 means no test was collected: with this suite that is a broken
# configuration, never a success, so it fails loudly instead of passing silently.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q -rfEs "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5); check testpaths and markers" >&2
fi
exit "$code"
