#!/usr/bin/env bash
# Creates .venv-coqui: Coqui TTS 0.22 and its real `tts-server`, in an environment of their own
# (they need numpy>=1.24 and torch; Rasa's TensorFlow 2.12 needs numpy<1.24). Used by the tests
# of the Coqui engine and by anyone who runs Coqui locally (see README, "Coqui TTS").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COQUI_VENV:-.venv-coqui}
stamp="$VENV/.installed-$(sha1sum requirements/coqui.txt | cut -c1-12)"
[ -f "$stamp" ] && exit 0
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
[ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
echo "==> installing Coqui TTS into $VENV (first time: a few minutes)"
"$VENV/bin/python" -m pip install --quiet pip==26.3
# torch 2.13.0+cpu is the CPU build (on this project's machines it lies in pip's find-links).
"$VENV/bin/python" -m pip install --quiet --no-deps -r requirements/coqui.txt
# torchaudio 2.11 (the newest on PyPI) ships C++ kernels built for torch 2.11, which fail to load
# beside torch 2.13. Coqui's VITS inference uses none of them, and torchaudio runs without its
# extension when the libraries are absent, so they are removed.
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
rm -f "$VENV"/.installed-*
touch "$stamp"
