#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root:
#   install dependencies, then `make check` (unit tests and integration
#   suite, both again under ASan/UBSan, then the multi-threaded tests under
#   ThreadSanitizer; every part runs, with a summary line each at the end).
#   Exits non-zero if any part failed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# The integration suite opens many client connections at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 2>/dev/null || true

make check
