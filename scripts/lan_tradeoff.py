#!/usr/bin/env python3
"""The simulator's evidence for the `lan` preset: detection time against false deaths.

First table: the simulator's `tune` workload (30 s of quiet, then 10% loss on every datagram
and one member slowed by EXTRA ms each way, and three crashes at 60, 90 and 120 s; 240 s in
all) for a few timing choices, mesh sizes and seeds, one Markdown row per (workload, config,
size): the median over seeds of the median crash-to-everyone detection time, the slowest
detection, in how many runs a live member was declared dead, and bytes per node per second.

Second table: the `pause-one` workload with the stall lengthened step by step, for `lan` and
memberlist's timings: in how many runs the stalled member was declared dead.

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
PAUSE_S = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def scenario(sim, name, edits, timings):
    """The built-in scenario `name` as TOML, with text `edits` and `timings` applied."""
    text = subprocess.run([sim, "--scenario", name, "--print-scenario"], capture_output=True,
                          text=True, check=True).stdout
    edits = edits + [("[timings]\n", "[timings]\n" + "".join(f"{k} = {v}\n" for k, v in timings.items()))]
    for old, new in edits:
        if old not in text:
            raise SystemExit(f"the {name} workload changed: {old!r} not found")
        text = text.replace(old, new, 1)
    return text


def summaries(sim, toml, n, seeds, tmp):
    """Runs `toml` on `n` nodes for seeds 1..=seeds; yields each summary."""
    path, out = os.path.join(tmp, "s.toml"), os.path.join(tmp, "out")
    with open(path, "w") as f:
        f.write(toml)
    for seed in range(1, seeds + 1):
        subprocess.run([sim, "--scenario", path, "--nodes", str(n), "--seed", str(seed), "--out", out,
                        "--quiet", "--no-plots"], check=True, capture_output=True)
        with open(os.path.join(out, "summary.json")) as f:
            yield json.load(f)


def timings_of(pt, mult, k):
    return {"probe_timeout_ms": pt, "suspicion_mult": mult, "suspicion_confirmations": k}


def tradeoff_table(args, sizes, tmp):
    print("| slow member, extra ms each way | config | nodes | detection, median (s) | slowest (s) "
          "| runs with a false death | B/node/s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for extra in EXTRA_MS:
        for name, t in CONFIGS.items():
            toml = scenario(args.sim, "tune", [("loss = 0.05", "loss = 0.1"),
                                               ("duration_s = 180.0", "duration_s = 240.0"),
                                               ("extra_ms = 250.0", f"extra_ms = {float(extra)}")],
                            timings_of(*t))
            for n in sizes:
                med, worst, false_runs, bytes_ = [], [], 0, []
                for s in summaries(args.sim, toml, n, args.seeds, tmp):
                    d = s["detection_all_s"]
                    med.append(d["p50"] if d else float("inf"))
                    worst.append(d["max"] if d else float("inf"))
                    false_runs += s["false_positives"] > 0
                    bytes_.append(s["bytes_per_node_per_s"])
                print(f"| {extra} | {name} | {n} | {statistics.median(med):.2f} | {max(worst):.2f} "
                      f"| {false_runs}/{args.seeds} | {statistics.mean(bytes_):.0f} |", flush=True)


def pause_table(args, sizes, tmp):
    configs = {k: CONFIGS[k] for k in ("memberlist LAN (500 ms, x4, k=2)", "lan (250 ms, x1, k=2)")}
    print("\n| config | nodes | " + " | ".join(f"stall {p} s" for p in PAUSE_S) + " |")
    print("| --- | ---: |" + " ---: |" * len(PAUSE_S))
    for name, t in configs.items():
        for n in sizes:
            cells = []
            for p in PAUSE_S:
                toml = scenario(args.sim, "pause-one", [("for_s = 1.0", f"for_s = {p}")], timings_of(*t))
                dead = sum(s["false_positives"] > 0 for s in summaries(args.sim, toml, n, args.seeds, tmp))
                cells.append(f"{dead}/{args.seeds}")
            print(f"| {name} | {n} | " + " | ".join(cells) + " |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", default="target/release/swimring-sim")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--sizes", default="10,30")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tradeoff_table(args, sizes, tmp)
        pause_table(args, sizes, tmp)


if __name__ == "__main__":
    main()
