#!/usr/bin/env bash
# Run Confidant's whole test suite; installs the virtualenv first if needed.
#
#   ./scripts/test.sh                 everything (PostgreSQL, Synapse, the Telegram
#                                     double and Chromium are started by the tests)
#   ./scripts/test.sh -k crypto       any pytest arguments
#   ./scripts/test.sh --install-only  just create .venv and install '.[test]'
#
# Needs Python 3.11+, and for the full suite Debian's postgresql and chromium
# packages (.ci/run installs them).  Exit code 5 (no tests collected) fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

system_packages() {
    # Debian's PostgreSQL (the store tests start their own throw-away cluster)
    # and Chromium (the browser tests); installed when missing and we are root.
    local missing=() pkg
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for pkg in python3-venv postgresql chromium fonts-dejavu-core; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: please install these Debian packages first: ${missing[*]}" >&2
        exit 1
    fi
    # Keep package scripts from starting services (the postgresql package
    # would otherwise start a system-wide cluster).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created" -eq 1 ] && rm -f "$policy"
    return 0
}

install() {
    system_packages
    if [ ! -x .venv/bin/python ]; then
        if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
            echo "scripts/test.sh: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
            exit 1
        fi
        echo "scripts/test.sh: creating .venv" >&2
        "$PYTHON" -m venv .venv
    fi
    # The last check runs isolated (-I), so it sees the installed project rather
    # than the working directory: an editable install made before a package
    # was added does not map it, and the console script would not find it.
    if ! .venv/bin/python -m pip show -q confidant-bot >/dev/null 2>&1 \
        || ! .venv/bin/python -c 'import pytest, pytest_asyncio, playwright, synapse' >/dev/null 2>&1 \
        || ! .venv/bin/python -I -c 'import bot, domain, handlers, store' >/dev/null 2>&1; then
        echo "scripts/test.sh: installing the project and its test dependencies" >&2
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[test]'
    fi
}

install
if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi

status=0
.venv/bin/pytest -q -x -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: no tests were collected; that counts as a failure" >&2
    exit 1
fi
exit "$status"
