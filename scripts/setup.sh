#!/usr/bin/env bash
# Creates .venv and installs clearsight (editable) with its dev dependencies.
# Idempotent: re-running only reinstalls when pyproject.toml or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The interpreter: $PYTHON when set; else the distribution's CPython 3.11+ (/usr/bin/python3) when it
# can make a venv and build extensions, else the first python3 on PATH. Debian and Ubuntu build
# theirs with profile-guided optimisation and LTO, a static interpreter; a pyenv build (as on these
# machines' PATH) has neither unless asked: the server spends ~15-25% less CPU per request on
# Debian's (docs/architecture.md, "Which Python").
pick_python() {
  local sys=/usr/bin/python3
  if [ -x "$sys" ] && "$sys" -c 'import sys, sysconfig, os, ensurepip, venv
ok = sys.version_info >= (3, 11) and os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
sys.exit(0 if ok else 1)' 2>/dev/null; then
    echo "$sys"
  else
    echo python3
  fi
}
PYTHON="${PYTHON:-$(pick_python)}"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel Cython 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import clearsight" 
touch "$VENV/.stamp"
