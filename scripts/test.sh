#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root:
#   install dependencies, then `make check` (unit tests, integration suite,
#   then both again under ASan/UBSan). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# The integration suite opens many client connections at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 2>/dev/null || true

make check
