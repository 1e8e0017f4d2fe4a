#!/usr/bin/env bash
# Runs a cargo-fuzz target for a while: scripts/fuzz.sh [ws_frame|rest_body] [seconds]
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-ws_frame}"
seconds="${2:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked
fi
cd fuzz
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096
