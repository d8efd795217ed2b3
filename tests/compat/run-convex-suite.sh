#!/usr/bin/env bash
# Runs Convex's own JS integration suite (get-convex/convex-backend,
# npm-packages/tests/js-integration-tests) against `convect serve`.
#
# The suite is NOT part of this repository: extract it somewhere else (see
# COMPATIBILITY.md) and pass its folder. This script never edits the suite's
# files; the only thing it writes there is node_modules/ (when missing).
#
# Usage:
#   tests/compat/run-convex-suite.sh [SUITE_DIR] [-- JEST_ARGS...]
#     SUITE_DIR   the js-integration-tests folder (or set CONVEX_SUITE_DIR)
#     JEST_ARGS   passed to jest, e.g. `-- basic.test.ts query.test.tsx`
#   tests/compat/run-convex-suite.sh --report RESULTS_DIR SUITE_DIR
#     reprints the table (and rewrites failures.txt) from an earlier jest.json
#
# Environment:
#   CONVEX_SUITE_DIR        suite folder when no argument is given
#   CONVECT_BIN             convect binary (default <repo>/target/debug/convect)
#   CONVEX_NPM_VERSION      `convex` npm version replacing the suite's
#                           "workspace:*" (default 1.48.0, what our tests pin)
#   CONVEX_SUITE_EXTRA_PACKAGES  packages the suite uses but gets from Convex's
#                           monorepo root, installed beside its own (default
#                           "jest-environment-jsdom@^30", for query.test.tsx)
#   CONVEX_SUITE_RESULTS    where logs and results go
#                           (default <repo>/tmp/convex-suite/<timestamp>)
#   CONVEX_SUITE_DIAGNOSE_CLEANUP=1  diagnostic only: deploy a temporary copy
#                           whose convex/cleanUp.ts lacks its one call into a
#                           component (Convect has no components yet, and every
#                           file's afterEach calls cleanUp). Never edits the
#                           suite. Default: deploy the suite's convex/ as is.
#   CONVEX_SUITE_REQUIRE_DEPLOY=1  stop if the deploy fails (by default jest
#                           still runs, so tests that need no functions report)
#   CONVECT_KEEP_TMP=1      keep the server's temporary data directory
#
# Output: a per-file table (passed / failed / skipped) on stdout, and in the
# results folder serve.log, deploy.log, jest.log, jest.json, table.txt and
# failures.txt (one line per failed test: file, test name, error message
# without its stack trace).
# Exit status: 0 if every test passed, 1 otherwise, 2 on a setup error.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONVECT_BIN="${CONVECT_BIN:-$REPO/target/debug/convect}"
CONVEX_NPM_VERSION="${CONVEX_NPM_VERSION:-1.48.0}"
CONVEX_SUITE_EXTRA_PACKAGES="${CONVEX_SUITE_EXTRA_PACKAGES-jest-environment-jsdom@^30}"

die() { echo "run-convex-suite: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }

# ---- per-file table (from jest.json) -----------------------------------------
# report RESULTS_DIR SUITE_DIR: writes table.txt and failures.txt, prints the table.
report() {
node - "$1/jest.json" "$2" "$1/table.txt" "$1/failures.txt" <<'EOF'
const fs = require("fs");
const path = require("path");
const [jsonFile, suite, tableFile, failuresFile] = process.argv.slice(2);
const report = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
const strip = (s) => String(s).replace(/\x1b\[[0-9;]*m/g, "");
const firstLine = (s) =>
  strip(s).split("\n").map((l) => l.trim()).find((l) => l && !l.startsWith("●")) || "";
// The message without its stack trace, on one line (for failures.txt).
const summary = (s) => {
  const lines = [];
  for (const l of strip(s).split("\n").map((l) => l.trim())) {
    if (l.startsWith("at ")) break;
    if (l && !l.startsWith("●")) lines.push(l);
  }
  return lines.join(" | ").slice(0, 600);
};
const rows = [];
const failures = [];
for (const file of report.testResults) {
  const name = path.relative(suite, file.name);
  const count = (...statuses) =>
    file.assertionResults.filter((a) => statuses.includes(a.status)).length;
  const row = {
    name,
    passed: count("passed"),
    failed: count("failed"),
    skipped: count("pending", "skipped", "todo", "disabled"),
    note: "",
  };
  if (file.assertionResults.length === 0 && file.status === "failed") {
    row.note = "suite failed to run: " + firstLine(file.message).slice(0, 100);
    failures.push(`${name}\t(suite)\t${summary(file.message)}`);
  }
  for (const a of file.assertionResults) {
    if (a.status === "failed") {
      failures.push(`${name}\t${a.fullName}\t${summary((a.failureMessages || []).join("\n"))}`);
    }
  }
  rows.push(row);
}
rows.sort((a, b) => a.name.localeCompare(b.name));
const total = rows.reduce(
  (t, r) => ({ passed: t.passed + r.passed, failed: t.failed + r.failed, skipped: t.skipped + r.skipped }),
  { passed: 0, failed: 0, skipped: 0 },
);
const width = Math.max(4, ...rows.map((r) => r.name.length));
const line = (n, p, f, s, note) =>
  `${n.padEnd(width)}  ${String(p).padStart(6)}  ${String(f).padStart(6)}  ${String(s).padStart(7)}${note ? "  " + note : ""}`;
const out = [
  line("file", "passed", "failed", "skipped"),
  line("-".repeat(width), "------", "------", "-------"),
  ...rows.map((r) => line(r.name, r.passed, r.failed, r.skipped, r.note)),
  line("-".repeat(width), "------", "------", "-------"),
  line(`total (${rows.length} files)`, total.passed, total.failed, total.skipped),
].join("\n");
fs.writeFileSync(tableFile, out + "\n");
fs.writeFileSync(failuresFile, failures.join("\n") + (failures.length ? "\n" : ""));
console.log(out);
EOF
}

# ---- arguments ---------------------------------------------------------------
SUITE="${CONVEX_SUITE_DIR:-}"
if [[ "${1:-}" == "--report" ]]; then
  # --report RESULTS_DIR SUITE_DIR: reprint the table of an earlier run.
  [[ $# -eq 3 ]] || die "usage: $0 --report RESULTS_DIR SUITE_DIR"
  report "$(cd "$2" && pwd)" "$(cd "$3" && pwd)"; exit 0
fi
if [[ $# -gt 0 && "$1" != "--" ]]; then SUITE="$1"; shift; fi
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; fi
JEST_ARGS=("$@")
[[ -n "$SUITE" ]] || die "usage: $0 SUITE_DIR [-- JEST_ARGS...]  (or set CONVEX_SUITE_DIR)"
SUITE="$(cd "$SUITE" 2>/dev/null && pwd)" || die "no such folder: $SUITE"
for f in package.json jest.config.js common.ts convex; do
  [[ -e "$SUITE/$f" ]] || die "$SUITE does not look like js-integration-tests (no $f)"
done
[[ -x "$CONVECT_BIN" ]] || die "no convect binary at $CONVECT_BIN (cargo build -p convect-cli, or set CONVECT_BIN)"
command -v node >/dev/null || die "node is required"
command -v npm >/dev/null || die "npm is required"
command -v curl >/dev/null || die "curl is required"

RESULTS="${CONVEX_SUITE_RESULTS:-$REPO/tmp/convex-suite/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
say "suite:   $SUITE"
say "convect: $CONVECT_BIN"
say "results: $RESULTS"

# ---- npm dependencies --------------------------------------------------------
# The suite's package.json pins "convex": "workspace:*" (it lives in Convex's
# monorepo), which npm cannot install. We install into a staging folder from a
# derived package.json (workspace: specs replaced) and move node_modules/ into
# the suite, leaving its package.json untouched.
installed_convex_version() {
  node -e 'try{console.log(require(process.argv[1]).version)}catch{console.log("")}' \
    "$SUITE/node_modules/convex/package.json"
}

extras_missing() {
  local spec name
  for spec in $CONVEX_SUITE_EXTRA_PACKAGES; do
    name="${spec%@*}"; [[ -n "$name" ]] || name="$spec"
    [[ -e "$SUITE/node_modules/$name/package.json" ]] || return 0
  done
  return 1
}

if [[ ! -x "$SUITE/node_modules/.bin/jest" || "$(installed_convex_version)" != "$CONVEX_NPM_VERSION" ]] || extras_missing; then
  say "installing the suite's npm packages (convex@$CONVEX_NPM_VERSION)"
  STAGE="$(mktemp -d "${TMPDIR:-/tmp}/convex-suite-deps.XXXXXX")"
  node - "$SUITE/package.json" "$STAGE/package.json" "$CONVEX_NPM_VERSION" $CONVEX_SUITE_EXTRA_PACKAGES <<'EOF'
const fs = require("fs");
const [src, dst, convexVersion, ...extras] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(src, "utf8"));
const out = { name: "convex-suite-deps", private: true, dependencies: {}, devDependencies: {} };
for (const kind of ["dependencies", "devDependencies"]) {
  for (const [name, spec] of Object.entries(pkg[kind] || {})) {
    if (typeof spec === "string" && spec.startsWith("workspace:")) {
      if (name !== "convex") {
        console.error(`skipping workspace package ${name} (${spec})`);
        continue;
      }
      out[kind][name] = convexVersion;
    } else {
      out[kind][name] = spec;
    }
  }
}
for (const spec of extras) {
  const at = spec.lastIndexOf("@");
  const [name, range] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, "*"];
  if (!(name in out.dependencies) && !(name in out.devDependencies)) out.devDependencies[name] = range;
}
fs.writeFileSync(dst, JSON.stringify(out, null, 2) + "\n");
EOF
  (cd "$STAGE" && npm install --no-audit --no-fund --loglevel=error) \
    || die "npm install failed (staging folder kept: $STAGE)"
  rm -rf "$SUITE/node_modules"
  mv "$STAGE/node_modules" "$SUITE/node_modules"
  rm -rf "$STAGE"
fi
say "convex npm package: $(installed_convex_version)"

# ---- convect serve -----------------------------------------------------------
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
PORT="$(free_port)"
SITE_PORT="$(free_port)"
while [[ "$SITE_PORT" == "$PORT" ]]; do SITE_PORT="$(free_port)"; done
DATA="$(mktemp -d "${TMPDIR:-/tmp}/convect-suite-data.XXXXXX")"
URL="http://127.0.0.1:$PORT"
SITE_URL="http://127.0.0.1:$SITE_PORT"

SERVER_PID=""
COPY=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${CONVECT_KEEP_TMP:-}" != "1" ]]; then
    rm -rf "$DATA" ${COPY:+"$COPY"}
  else
    say "kept: $DATA ${COPY:-}"
  fi
}
trap cleanup EXIT

say "starting convect serve on $URL (site $SITE_URL), data $DATA"
# Convex's own CI runs the suite with a 20 s action limit (ACTIONS_USER_TIMEOUT_SECS);
# the suite's "action that deadlocks" test waits 25 s for that timeout.
"$CONVECT_BIN" serve --data "$DATA" --port "$PORT" --site-port "$SITE_PORT" --action-timeout 20 \
  >"$RESULTS/serve.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -50 "$RESULTS/serve.log" >&2; die "convect serve exited before it was ready"; }
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL/version" || true)" == "200" ]]; then
    ready=1; break
  fi
  sleep 0.1
done
[[ -n "$ready" ]] || { tail -50 "$RESULTS/serve.log" >&2; die "convect serve not ready after 60 s"; }
ADMIN_KEY=""
for _ in $(seq 1 100); do
  [[ -s "$DATA/admin_key" ]] && { ADMIN_KEY="$(tr -d '[:space:]' <"$DATA/admin_key")"; break; }
  sleep 0.1
done
[[ -n "$ADMIN_KEY" ]] || die "$DATA/admin_key was not written"

# ---- deploy the suite's convex/ folder, unchanged --------------------------------
DEPLOY_DIR="$SUITE/convex"
if [[ "${CONVEX_SUITE_DIAGNOSE_CLEANUP:-}" == "1" ]]; then
  # Diagnostic only, never the reported yardstick: every file's afterEach calls
  # cleanUp, whose last line calls a component, so without components every
  # test fails there. A copy of the suite (convex.config.ts imports
  # ../component) without that one call shows how the tests themselves fare.
  COPY="$(mktemp -d "${TMPDIR:-/tmp}/convex-suite-copy.XXXXXX")"
  (cd "$SUITE" && tar --exclude=./node_modules -cf - .) | (cd "$COPY" && tar -xf -)
  ln -s "$SUITE/node_modules" "$COPY/node_modules"
  grep -q 'components\.component\.cleanUp' "$COPY/convex/cleanUp.ts" || die "cleanUp.ts no longer calls the component; drop CONVEX_SUITE_DIAGNOSE_CLEANUP"
  sed -i '/components\.component\.cleanUp/d' "$COPY/convex/cleanUp.ts"
  DEPLOY_DIR="$COPY/convex"
  say "DIAGNOSTIC: deploying a copy whose cleanUp does not call the component"
  echo "diagnostic: cleanUp without its component call" >"$RESULTS/deploy.diagnostic"
fi
say "deploying $DEPLOY_DIR"
DEPLOY_STATUS=0
"$CONVECT_BIN" deploy "$DEPLOY_DIR" --url "$URL" --admin-key "$ADMIN_KEY" \
  >"$RESULTS/deploy.log" 2>&1 || DEPLOY_STATUS=$?
if [[ $DEPLOY_STATUS -eq 0 ]]; then
  say "deploy succeeded"
  echo "ok${COPY:+ (diagnostic copy: cleanUp without its component call)}" >"$RESULTS/deploy.status"
else
  echo "failed ($DEPLOY_STATUS)" >"$RESULTS/deploy.status"
  echo "---- deploy failed (exit $DEPLOY_STATUS) ----" >&2
  cat "$RESULTS/deploy.log" >&2
  echo "--------------------------------------------" >&2
  [[ "${CONVEX_SUITE_REQUIRE_DEPLOY:-}" == "1" ]] && die "deploy failed; not running jest"
  say "running jest anyway: tests that need the functions will fail"
fi

# ---- jest --------------------------------------------------------------------
say "running jest (maxWorkers=1, files in alphabetical order)"
JEST_STATUS=0
(
  cd "$SUITE"
  # SKIP_INSTANCE_SECRET_TESTS: the suite's switch for deployments whose
  # instance secret is not Convex's development one (its "expired upload url"
  # test carries a token sealed with that secret); Convect's never is.
  SKIP_INSTANCE_SECRET_TESTS=1 \
  DEPLOYMENT_URL="$URL" SITE_URL="$SITE_URL" ADMIN_KEY="$ADMIN_KEY" \
    node_modules/.bin/jest --maxWorkers=1 --forceExit \
      --testSequencer="$REPO/tests/compat/alphabetical-sequencer.cjs" \
      --json --outputFile="$RESULTS/jest.json" ${JEST_ARGS[@]+"${JEST_ARGS[@]}"}
) >"$RESULTS/jest.log" 2>&1 || JEST_STATUS=$?
[[ -s "$RESULTS/jest.json" ]] || { tail -80 "$RESULTS/jest.log" >&2; die "jest wrote no results (exit $JEST_STATUS)"; }

report "$RESULTS" "$SUITE"

echo
say "deploy: $(cat "$RESULTS/deploy.status"); jest exit $JEST_STATUS; logs in $RESULTS"
[[ $DEPLOY_STATUS -eq 0 && $JEST_STATUS -eq 0 ]] && exit 0 || exit 1
