#!/usr/bin/env bash
# Fresh Debian 12 machine → built semskip: installs missing packages, configures, builds.
# Usage: scripts/bootstrap.sh [preset]   (default: cpu)
# With the cpu preset it also builds the hardening tree (preset asan, build/asan: the parsers
# under ASan+UBSan, their tests and the libFuzzer targets) that `ctest --preset cpu` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-cpu}"
scripts/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset"
if [ "$preset" = cpu ]; then
  cmake --preset asan
  cmake --build --preset asan
fi
