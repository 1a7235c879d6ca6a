#!/usr/bin/env bash
# Fresh Debian 12 machine → built semskip: installs missing packages, configures, builds.
# Usage: scripts/bootstrap.sh [preset]   (default: cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-cpu}"
scripts/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset"
