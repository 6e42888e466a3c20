#!/bin/sh
# Find a working Python >= 3.12 that can create virtual environments.
#
# Prints the interpreter's real path on stdout and explains each choice on stderr, so that
# `PY=$(scripts/find-python.sh)` works in scripts and a person still sees what happened.
# Candidates, in order: $PYTHON, python3.13, python3.12, python3 on PATH, then the versions
# pyenv installed (3.13 before 3.12). Each candidate is actually run: a pyenv shim with no
# version selected fails there and is skipped. Exits 1, saying what to install, when none works.
set -u

say() { printf 'find-python: %s\n' "$*" >&2; }

# Runs "$1" and, when it is a usable Python, prints its sys.executable and version.
probe() {
    "$1" - <<'PY' 2>/dev/null
import sys
if sys.version_info < (3, 12):
    print(f"too old ({sys.version.split()[0]})")
    sys.exit(2)
try:
    import ensurepip  # noqa: F401  (missing on Debian without the pythonX.Y-venv package)
    import venv  # noqa: F401
except ImportError:
    v = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(f"cannot create virtual environments (install python{v}-venv)")
    sys.exit(3)
print(sys.executable, sys.version.split()[0])
PY
}

try_candidate() {
    label=$1
    cmd=$2
    case $cmd in
        */*) [ -x "$cmd" ] || { say "$label: skipped, $cmd is not an executable file"; return 1; } ;;
        *) command -v "$cmd" >/dev/null 2>&1 || return 1 ;;
    esac
    out=$(probe "$cmd")
    status=$?
    case $status in
        0)
            exe=${out% *}
            version=${out##* }
            say "using Python $version at $exe (found as $label)"
            printf '%s\n' "$exe"
            exit 0
            ;;
        2 | 3) say "$label: skipped, $out" ;;
        *) say "$label: skipped, it does not run (a pyenv shim with no version selected?)" ;;
    esac
    return 1
}

if [ -n "${PYTHON:-}" ]; then
    try_candidate "\$PYTHON=$PYTHON" "$PYTHON"
fi
for name in python3.13 python3.12 python3; do
    try_candidate "$name" "$name"
done

if command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null)
else
    pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
fi
if [ -n "$pyenv_root" ] && [ -d "$pyenv_root/versions" ]; then
    found=$(ls -d "$pyenv_root"/versions/3.13* "$pyenv_root"/versions/3.12* 2>/dev/null)
    # Newest first; a sort without -V (old BSD) still orders 3.13 before 3.12.
    sorted=$(printf '%s\n' "$found" | sort -r -V 2>/dev/null) || sorted=$(printf '%s\n' "$found" | sort -r)
    for dir in $sorted; do
        try_candidate "pyenv $(basename "$dir")" "$dir/bin/python3"
    done
fi

cat >&2 <<'MSG'
find-python: no working Python 3.12 or newer was found. Install one, then run `make install` again:
  Debian/Ubuntu:  sudo apt-get install python3.12 python3.12-venv   (or python3.13 python3.13-venv)
  Fedora:         sudo dnf install python3.12
  macOS:          brew install python@3.13
  pyenv:          pyenv install 3.13
  or point at one you have:  make install PYTHON=/path/to/python3.12
MSG
exit 1
