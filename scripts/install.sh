#!/bin/sh
# Create .venv with a working Python >= 3.12 and install the project with its dev extras.
#
# Idempotent: an existing working .venv is kept, and the `pip install` is skipped while
# pyproject.toml is unchanged since the last successful install (its hash is kept in a stamp
# file inside .venv). FORCE=1 reinstalls anyway.
set -eu
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.install-stamp"

say() { printf 'install: %s\n' "$*"; }

venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
            >/dev/null 2>&1
}

if venv_ok; then
    say "keeping $VENV ($("$VENV/bin/python" -c 'import sys; print("Python", sys.version.split()[0])'))"
else
    if [ -e "$VENV" ]; then
        say "$VENV exists but its Python does not work (moved or removed interpreter?): recreating it"
        rm -rf "$VENV"
    fi
    python=$(scripts/find-python.sh)
    say "creating $VENV with $python"
    "$python" -m venv "$VENV"
fi

# The stamp covers pyproject.toml and the interpreter, so a rebuilt venv reinstalls.
want=$("$VENV/bin/python" - <<'PY'
import hashlib, sys
digest = hashlib.sha256(open("pyproject.toml", "rb").read())
digest.update(sys.version.encode())
print(digest.hexdigest())
PY
)
if [ "${FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "dependencies up to date (pyproject.toml unchanged since the last install)"
    exit 0
fi

say "installing the project and its dev dependencies (pip install -e '.[dev]');"
say "the first time this takes a few minutes (VERBOSE=1 shows pip's progress)"
quiet=--quiet
[ "${VERBOSE:-0}" = 1 ] && quiet=
"$VENV/bin/python" -m pip install $quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install $quiet --disable-pip-version-check --progress-bar off -e '.[dev]'
printf '%s\n' "$want" >"$STAMP"
say "done: $VENV is ready"
