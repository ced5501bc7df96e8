#!/usr/bin/env python3
"""The simulator's evidence for the `lan` preset: detection time against false deaths.

Runs the simulator's `tune` workload (30 s of quiet, then 10% loss on every datagram and one
member slowed by EXTRA ms each way, and three crashes at 60, 90 and 120 s; 240 s in all) for a
few timing choices, mesh sizes and seeds, and prints one Markdown row per (workload, config,
size): the median over seeds of the median crash-to-everyone detection time, the slowest
detection, in how many runs a live member was declared dead, and bytes per node per second.

  cargo build --release -p swimring-sim
  scripts/lan_tradeoff.py [--sim target/release/swimring-sim] [--seeds 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

# name: (probe_timeout_ms, suspicion_mult, suspicion_confirmations); the rest is `lan`'s.
CONFIGS = {
    "memberlist LAN (500 ms, x4, k=2)": (500, 4, 2),
    "x1 alone (500 ms, x1, k=0)": (500, 1, 0),
    "x1, fail at 2 x 250 ms, k=0": (250, 1, 0),
    "lan (250 ms, x1, k=2)": (250, 1, 2),
    "x2 (250 ms, x2, k=2)": (250, 2, 2),
}
EXTRA_MS = [0, 100, 150, 250]


def scenario(sim, extra_ms, timings):
    base = subprocess.run([sim, "--scenario", "tune", "--print-scenario"], capture_output=True,
                          text=True, check=True).stdout
    edits = [("loss = 0.05", "loss = 0.1"), ("duration_s = 180.0", "duration_s = 240.0"),
             ("extra_ms = 250.0", f"extra_ms = {float(extra_ms)}"),
             ("[timings]\n", "[timings]\n" + "".join(f"{k} = {v}\n" for k, v in timings.items()))]
    for old, new in edits:
        if old not in base:
            raise SystemExit(f"the tune workload changed: {old!r} not found")
        base = base.replace(old, new, 1)
    return base


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", default="target/release/swimring-sim")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--sizes", default="10,30")
    args = p.parse_args()
    print("| slow member, extra ms each way | config | nodes | detection, median (s) | slowest (s) "
          "| runs with a false death | B/node/s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.toml")
        for extra in EXTRA_MS:
            for name, (pt, mult, k) in CONFIGS.items():
                timings = {"probe_timeout_ms": pt, "suspicion_mult": mult, "suspicion_confirmations": k}
                with open(path, "w") as f:
                    f.write(scenario(args.sim, extra, timings))
                for n in [int(x) for x in args.sizes.split(",")]:
                    med, worst, false_runs, bytes_ = [], [], 0, []
                    for seed in range(1, args.seeds + 1):
                        out = os.path.join(tmp, "out")
                        subprocess.run([args.sim, "--scenario", path, "--nodes", str(n), "--seed", str(seed),
                                        "--out", out, "--quiet", "--no-plots"], check=True, capture_output=True)
                        with open(os.path.join(out, "summary.json")) as f:
                            s = json.load(f)
                        d = s["detection_all_s"]
                        med.append(d["p50"] if d else float("inf"))
                        worst.append(d["max"] if d else float("inf"))
                        false_runs += s["false_positives"] > 0
                        bytes_.append(s["bytes_per_node_per_s"])
                    print(f"| {extra} | {name} | {n} | {statistics.median(med):.2f} | {max(worst):.2f} "
                          f"| {false_runs}/{args.seeds} | {statistics.mean(bytes_):.0f} |", flush=True)


if __name__ == "__main__":
    main()
