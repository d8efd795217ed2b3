#!/usr/bin/env bash
# The whole test suite, as the README's second command runs it: installs the npm
# packages the tests and functions use, runs the Rust tests, builds `convect`, and
# runs the end-to-end tests against it with the official Convex clients.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> npm packages"
npm ci --no-audit --no-fund

echo "==> Rust tests"
cargo test --workspace --locked

echo "==> build convect"
cargo build --locked -p convect-cli

echo "==> end-to-end tests"
CONVECT_BIN="$PWD/target/debug/convect" node --test --test-concurrency=1 tests/
