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

install() {
    if [ ! -x .venv/bin/python ]; then
        if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
            echo "scripts/test.sh: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
            exit 1
        fi
        echo "scripts/test.sh: creating .venv" >&2
        "$PYTHON" -m venv .venv
    fi
    if ! .venv/bin/python -m pip show -q confidant-bot >/dev/null 2>&1 \
        || ! .venv/bin/python -c 'import pytest, pytest_asyncio, playwright, synapse' >/dev/null 2>&1; then
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
