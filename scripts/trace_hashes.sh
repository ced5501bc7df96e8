#!/usr/bin/env bash
# Prints the simulator's trace hash for a fixed set of scenarios and seeds, one line each:
# `scenario nodes seed hash`. A refactoring that must not change behaviour keeps every line
# identical; diff the output before and after (`scripts/trace_hashes.sh > before.txt`).
# Takes about a minute with a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p swimring-sim
sim=target/release/swimring-sim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for scenario in cold-start kill-one kill-10pct partition-heal slow-node churn pause-one \
  isolate-one dup-reorder join-leave; do
  for seed in 1 7; do
    for nodes in 30 100; do
      line=$("$sim" --scenario "$scenario" --nodes "$nodes" --seed "$seed" --duration-s 120 \
        --no-plots --out "$out" | grep -o 'trace [0-9a-f]*$')
      echo "$scenario $nodes $seed ${line#trace }"
    done
  done
done
