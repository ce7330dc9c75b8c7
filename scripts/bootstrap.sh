#!/usr/bin/env bash
# Sets up everything shiftsync's tests, demo and benchmarks need on a fresh Debian machine:
# PostgreSQL (for the local stand-in and the PostgreSQL destination), Chromium (for the console's
# browser tests) and the virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${SHIFTSYNC_EXTRAS:-dev}"

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if ! have_initdb; then
    echo "bootstrap: PostgreSQL server not found; installing the Debian package 'postgresql'"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
fi

# The console's browser tests drive Debian's chromium headless (Playwright never downloads
# browsers of its own here).
if ! command -v chromium >/dev/null 2>&1; then
    echo "bootstrap: chromium not found; installing the Debian package 'chromium'"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    python3 -m venv .venv
fi
log=$(mktemp)
# pip's output is kept out of sight unless it fails: this machine's pip configuration is chatty.
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e ".[${extras}]"; } >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    rm -f "$log"
    echo "bootstrap: pip install failed (see above)" >&2
    exit 1
fi
rm -f "$log"
echo "bootstrap: ready (.venv with extras: ${extras})"
