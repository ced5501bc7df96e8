#!/usr/bin/env bash
# Regenerates every picture in README.md and docs/ (docs/img/*.svg) from the simulator
# command that draws it, so a picture cannot silently part from the code. The simulator is
# deterministic and its SVGs carry no wall time, so the same code gives byte-identical files.
#
#   scripts/figures.sh          regenerate them all into docs/img/ (then commit what changed)
#   scripts/figures.sh --check  regenerate them all into a temporary directory and fail if a
#                               committed picture differs, or if docs/img/ holds a picture
#                               this script does not make (CI runs this)
#
# Both modes draw every picture: together they take about 10 s of wall time on the
# project's shared 2-core machine (kill-10pct at 200 nodes ~1 s, the 54-point tuning grid
# at 30 nodes ~8 s), plus building the release binary if it is not up to date (~2 min from
# a clean target/). The script prints each picture's time and the total.
#
# FIGURES_PROFILE=dev uses the debug binary instead: the same bytes (compared with cmp:
# the optimisation level does not change Rust's floating point), about 65 s of drawing but
# no release build; CI runs it so, after its tests have built that binary.
#
# A change that moves the protocol's behaviour (timings, the wire format's sizes, the
# simulator's model) changes the pictures: run this script and commit the new ones with it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="write"
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *)
    echo "usage: scripts/figures.sh [--check]" >&2
    exit 2
    ;;
esac

start=$EPOCHREALTIME
profile=${FIGURES_PROFILE:-release}
case $profile in
  release) sim=target/release/swimring-sim ;;
  dev) sim=target/debug/swimring-sim ;;
  *)
    echo "FIGURES_PROFILE must be release or dev, not $profile" >&2
    exit 2
    ;;
esac
cargo build -q -p swimring-sim --profile "$profile"
echo "build: $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
made=()
stale=()
updated=0

# figure NAME 'SIM ARGS' OUTPUT=PICTURE...: runs the simulator with SIM ARGS into its own
# directory, then compares (or copies) each OUTPUT it wrote against docs/img/PICTURE.
figure() {
  local name=$1 args=$2 t0=$EPOCHREALTIME pair out picture
  shift 2
  # shellcheck disable=SC2086 # the arguments are one string so each figure reads as a command
  "$sim" $args --out "$tmp/$name" --quiet >"$tmp/$name.log"
  for pair in "$@"; do
    out=$tmp/$name/${pair%%=*}
    picture=docs/img/${pair#*=}
    made+=("$picture")
    if cmp -s "$out" "$picture"; then
      continue
    fi
    if [[ $mode == check ]]; then
      stale+=("$picture")
    else
      cp "$out" "$picture"
      updated=$((updated + 1))
      echo "updated $picture"
    fi
  done
  printf '%-16s %6.1f s  swimring-sim %s\n' "$name" \
    "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$args"
}

# The pictures, each with the exact command that draws it (docs/SIMULATOR.md, "Figures").
figure kill-10pct-200 '--scenario kill-10pct --nodes 200 --seed 1' \
  convergence.svg=kill-10pct-200-convergence.svg \
  detection_cdf.svg=kill-10pct-200-detection-cdf.svg
figure tune-30 '--tune --nodes 30 --seed 1' \
  tune.svg=tune-30.svg

# A picture in docs/img/ that no command above makes could drift unseen.
for picture in docs/img/*; do
  if [[ ! " ${made[*]} " == *" $picture "* ]]; then
    echo "error: $picture is made by no command in scripts/figures.sh" >&2
    stale+=("$picture")
  fi
done

echo "total: $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"
if ((${#stale[@]})); then
  echo "stale against the current code: ${stale[*]}" >&2
  echo "regenerate with scripts/figures.sh and commit the pictures" >&2
  exit 1
fi
if [[ $mode == check ]]; then
  echo "figures: ${#made[@]} pictures, all match the code"
else
  echo "figures: ${#made[@]} pictures, $updated updated"
fi
