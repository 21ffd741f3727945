#!/usr/bin/env bash
# One entry point for a fresh machine: set up (or reuse) the environment, then
#   scripts/latte.sh demo [args]   run the main job on the embedded CPU world
#   scripts/latte.sh test [args]   run the test suite
#   scripts/latte.sh <latte args>  any other latte command
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
cmd="${1:-demo}"; shift || true
case "$cmd" in
    test) exec python -m pytest "$@" ;;
    *) exec latte "$cmd" "$@" ;;
esac
