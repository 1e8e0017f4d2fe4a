#!/usr/bin/env bash
# Runs the whole test suite: unit, property and real-socket integration tests of every crate.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p pm-server).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust from https://rustup.rs and try again." >&2
  exit 1
fi
exec cargo test --workspace --locked "$@"
