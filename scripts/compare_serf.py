#!/usr/bin/env python3
"""Side-by-side benchmark: swimring's lan preset against serf's default LAN profile.

Both run on the same kind of hosts: one network namespace per agent on a private bridge
(all inside namespaces this script creates; nothing leaves them). For each system and size:

  join      start host 0, then all others seeded with it: time until every agent has
            seen every other join (from the agents' own event streams), and the same for the
            median host (one lost rumour delays the first figure to the next push-pull)
  traffic   bytes each host sends per second in a steady, healthy mesh (veth counters), and
            each agent's CPU (utime + stime from /proc) over the same window
  detect    --rounds of kill -9 one agent (then restart it): time until the first
            survivor suspects it, and until the first and the last survivor declare it dead
            (event timestamps); medians over the rounds, and the slowest round
  cutoff    --rounds of cutting one host off (nft drops every packet to and from it, as a
            host that lost power): time until every other host declares it dead; then the
            rules go and the time until it and the rest have seen each other come back
  partition --rounds of a split into the first 3 hosts and the rest: once each side has
            declared the other dead, the rules go, and the time until every host has seen
            every member of the other side come back (one mesh again)
  pause     SIGSTOP one agent for each of --pauses seconds, then SIGCONT: how many hosts
            declared it dead, watched --pause-watch seconds past the resume
  loss      for each of --loss-percents, random loss on every host's link (nft numgen) for
            --loss-secs: how many times a live member is declared dead. Suspicions are counted
            too, but do not compare them: swimring emits member_suspect on every member that
            hears of one, serf logs only on the member that raised it.

Event times: swimring prints `{"ts": ..., "event": ...}` lines with --events json and its own
timestamp. serf's event handlers are coalesced (up to 3 s), which would blur detection, so
serf's log lines (written the moment memberlist tells serf) are stamped as they arrive.

Needs root, iproute2, nftables and serf. Run as root:
  scripts/compare_serf.py --sizes 8 --systems serf,swimring --swimring-bin target/release/swimring
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

PREFIX = "swrb-"
PORT = 7946
SERF_MARKERS = [
    ("serf: EventMemberJoin: ", "member_joined"),
    ("serf: EventMemberFailed: ", "member_dead"),
    ("serf: EventMemberLeave: ", "member_left"),
    ("memberlist: Suspect ", "member_suspect"),
]


def sh(*args, check=True, input=None):
    r = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def remove_stale():
    for line in sh("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            kill_ns(name)
            sh("ip", "netns", "del", name, check=False)


def kill_ns(ns):
    for pid in sh("ip", "netns", "pids", ns, check=False).split():
        for sig in ("-CONT", "-KILL"):
            sh("kill", sig, pid, check=False)


def mac(i):
    return f"02:77:00:00:{(i + 1) >> 8:02x}:{(i + 1) & 0xff:02x}"


class Net:
    """N hosts h0..h{N-1} at 10.77.0.{i+1}/24 on a bridge in its own namespace."""

    seq = 0

    def __init__(self, n):
        Net.seq += 1
        self.id = f"{PREFIX}{os.getpid()}-{Net.seq}"
        self.br = f"{self.id}-br"
        self.namespaces = [self.br]
        sh("ip", "netns", "add", self.br)
        sh("ip", "-n", self.br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.br, "link", "set", "br0", "up")
        self.hosts = []
        for i in range(n):
            ns = f"{self.id}-h{i}"
            ip = f"10.77.0.{i + 1}"
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            sh("ip", "-n", self.br, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.br, "link", "set", f"h{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "address", mac(i))
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self.hosts.append((ns, ip))
        # Static neighbours: the kernel's ARP table is shared by all namespaces and holds
        # 1024 dynamic entries (gc_thresh3); 60 hosts x 59 peers overflows it and packets
        # are dropped. Permanent entries do not count against that limit.
        for i, (ns, _) in enumerate(self.hosts):
            batch = "".join(f"neigh replace {ip} lladdr {mac(j)} dev eth0 nud permanent\n"
                            for j, (_, ip) in enumerate(self.hosts) if j != i)
            sh("ip", "-n", ns, "-batch", "-", input=batch)

    def tx_bytes(self):
        """Bytes each host has sent: received by the bridge side of its veth."""
        links = json.loads(sh("ip", "-n", self.br, "-j", "-s", "link", "show"))
        by = {l["ifname"]: l["stats64"]["rx"]["bytes"] for l in links if "stats64" in l}
        return [by.get(f"h{i}", 0) for i in range(len(self.hosts))]

    def rules(self, i, input_rule, output_rule=None):
        """Host i's fault table: one rule on its input chain, optionally one on its output."""
        text = ("table inet swrbfault {\n  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    {input_rule}\n  }}\n")
        if output_rule:
            text += ("  chain output {\n    type filter hook output priority 0; policy accept;\n"
                     f"    {output_rule}\n  }}\n")
        sh("ip", "netns", "exec", self.hosts[i][0], "nft", "-f", "-", input=text + "}\n")

    def loss(self, idxs, percent):
        for i in idxs:
            self.rules(i, f"iifname \"eth0\" numgen random mod 100 < {percent} drop")

    def cut_off(self, i):
        """Host i sends and receives nothing on the bridge: silence, not even a refusal."""
        self.rules(i, "iifname \"eth0\" drop", "oifname \"eth0\" drop")

    def partition(self, groups):
        """Each host drops what arrives from hosts of the other groups."""
        for g, members in enumerate(groups):
            others = ", ".join(self.hosts[j][1] for h, m in enumerate(groups) if h != g for j in m)
            for i in members:
                self.rules(i, f"ip saddr {{ {others} }} drop")

    def heal(self, idxs):
        for i in idxs:
            sh("ip", "netns", "exec", self.hosts[i][0], "nft", "delete", "table", "inet", "swrbfault", check=False)

    def close(self):
        for ns in reversed(self.namespaces):
            kill_ns(ns)
            sh("ip", "netns", "del", ns, check=False)


class Agent:
    """One agent process on one host, its event stream collected by a reader thread."""

    def __init__(self, system, bin_, net, i, seeds, logdir):
        ns, ip = net.hosts[i]
        self.name = f"n{i}"
        self.system = system
        self.events = []  # (ts, event, member)
        self.lock = threading.Lock()
        addr = f"{ip}:{PORT}"
        # Appended to: a restarted agent (see detect) keeps writing to its host's log.
        self.log = open(os.path.join(logdir, f"{system}-{len(net.hosts)}-{self.name}.log"), "a")
        self.log.write(f"--- started {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        if system == "swimring":
            # serf runs unencrypted by default, so swimring does too: like for like on the wire.
            # TCP control on each namespace's own loopback (a Unix socket path would be shared).
            cmd = [bin_, "agent", "--name", self.name, "--bind", addr, "--profile", "lan",
                   "--events", "json", "--insecure-plaintext", "--control", "127.0.0.1:7373"]
            for s in seeds:
                cmd += ["--seed", s]
            stderr = self.log
        else:
            cmd = [bin_, "agent", "-node", self.name, "-bind", addr, "-rpc-addr", "127.0.0.1:7373"]
            for s in seeds:
                cmd += ["-join", s]
            stderr = subprocess.STDOUT
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdout=subprocess.PIPE,
                                     stderr=stderr, stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.time()
            if self.system == "swimring":
                try:
                    ev = json.loads(line)
                    self._add(float(ev["ts"]), ev["event"], ev.get("member", ""))
                except (ValueError, KeyError, TypeError):
                    self.log.write(line)
            else:
                self.log.write(line)
                for marker, name in SERF_MARKERS:
                    if marker in line:
                        member = line.split(marker, 1)[1].split()[0]
                        self._add(now, name, member)

    def _add(self, ts, event, member):
        with self.lock:
            self.events.append((ts, event, member))

    def seen(self, event, since=0.0):
        with self.lock:
            return [(ts, m) for ts, e, m in self.events if e == event and ts >= since]

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig):
        """Signals the agent itself (the process `ip netns exec` became)."""
        os.kill(self.proc.pid, sig)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def cpu_ticks(agents):
    """utime + stime of every agent process, in clock ticks."""
    total = 0
    for a in agents:
        with open(f"/proc/{a.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def wait(what, bound, cond, poll=0.2):
    start = time.time()
    while True:
        r = cond()
        if r:
            return time.time() - start
        if time.time() - start > bound:
            raise TimeoutError(f"{what}: not within {bound}s")
        time.sleep(poll)


def ready(system, bin_, ns):
    args = (["members", "--json", "--control", "127.0.0.1:7373"] if system == "swimring"
            else ["members", "-format", "json"])
    r = subprocess.run(["ip", "netns", "exec", ns, bin_] + args, capture_output=True, text=True, timeout=10)
    return r.returncode == 0


def run_one(system, bin_, n, args, logdir):
    net = Net(n)
    agents = []
    out = {"system": system, "nodes": n}
    try:
        agents.append(Agent(system, bin_, net, 0, [], logdir))
        wait("host 0 ready", 20, lambda: ready(system, bin_, net.hosts[0][0]))
        seed = f"{net.hosts[0][1]}:{PORT}"
        t0 = time.time()
        for i in range(1, n):
            agents.append(Agent(system, bin_, net, i, [seed], logdir))
        names = {a.name for a in agents}

        def joined_all():
            """Per host, when it had seen every other host join; None until all have."""
            full = []
            for a in agents:
                got = {}
                for ts, m in a.seen("member_joined"):
                    got.setdefault(m, ts)
                got.pop(a.name, None)
                if set(got) != names - {a.name}:
                    return None
                full.append(max(got.values(), default=t0))
            return sorted(full)

        wait(f"{n} {system} agents converge", 180, joined_all)
        full = joined_all()
        out["join_s"] = round(full[-1] - t0, 3)
        out["join_median_host_s"] = round(full[len(full) // 2] - t0, 3)
        print(f"  {system} {n}: every host saw all join in {out['join_s']} s "
              f"(median host: {out['join_median_host_s']} s)", flush=True)

        time.sleep(args.settle)  # let join traffic die down before measuring steady state
        b0, c0, s0 = net.tx_bytes(), cpu_ticks(agents), time.time()
        time.sleep(args.steady_secs)
        b1, c1, s1 = net.tx_bytes(), cpu_ticks(agents), time.time()
        out["bytes_per_node_s"] = round(sum(y - x for x, y in zip(b0, b1)) / n / (s1 - s0), 1)
        hz = os.sysconf("SC_CLK_TCK")
        out["cpu_pct_per_node"] = round(100 * (c1 - c0) / hz / n / (s1 - s0), 3)
        print(f"  {system} {n}: {out['bytes_per_node_s']} B/node/s, "
              f"{out['cpu_pct_per_node']} % of a core per node", flush=True)

        phases = args.phases.split(",")
        if "detect" in phases:
            out.update(detect(system, bin_, net, agents, seed, args, logdir))
        if "cutoff" in phases:
            out.update(cutoff(system, net, agents, args))
        if "partition" in phases:
            out.update(partition(system, net, agents, args))
        if "pause" in phases:
            out.update(pauses(system, agents, args))
        if "loss" in phases:
            out.update(losses(system, net, agents, args))
    finally:
        for a in agents:
            a.close()
        net.close()
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def first_times(observers, event, member, since):
    """Per observer, when it first logged `event` about `member` at or after `since`; None
    until every observer has."""
    times = []
    for a in observers:
        ts = [t for t, m in a.seen(event, since) if m == member]
        if not ts:
            return None
        times.append(min(ts))
    return times


def back_from_dead(agents, since):
    """When the last (observer, member) pair that was declared dead at or after `since` came
    back (member_joined after that death); None while any is still dead. 0 if none died."""
    last = since
    for a in agents:
        dead_at = {}
        for t, m in a.seen("member_dead", since):
            dead_at[m] = max(t, dead_at.get(m, t))
        for m, t_dead in dead_at.items():
            back = [t for t, j in a.seen("member_joined", t_dead) if j == m]
            if not back:
                return None
            last = max(last, min(back))
    return last


def summarise(system, n, phase, rounds, keys):
    out = {phase: rounds}
    for k in keys:
        out[f"{phase}_{k}"] = round(median([r[k] for r in rounds]), 3)
        out[f"{phase}_{k}_max"] = max(r[k] for r in rounds)
    medians = ", ".join(f"{k} {out[f'{phase}_{k}']} s (max {out[f'{phase}_{k}_max']} s)" for k in keys)
    print(f"  {system} {n}: {phase}, medians over {len(rounds)} rounds: {medians}", flush=True)
    return out


def detect(system, bin_, net, agents, seed, args, logdir):
    """--rounds rounds of: kill -9 one agent, time until the first survivor suspects it and
    until the first and the last survivor declare it dead, then restart it under the same name
    and wait until every other agent has seen it join again. Each round's victim is another
    host (never host 0). One kill is one random draw (who probes the victim first, how many
    peers confirm), so the medians over the rounds are what to compare."""
    n = len(agents)
    rounds = []
    for r in range(args.rounds):
        i = n - 1 - r % (n - 1)
        victim = agents[i]
        survivors = [a for a in agents if a is not victim]
        t_kill = time.time()
        victim.kill()
        wait(f"{system} {n}: all survivors declare {victim.name} dead", 300,
             lambda: first_times(survivors, "member_dead", victim.name, t_kill))
        dead = first_times(survivors, "member_dead", victim.name, t_kill)
        suspected = [t for a in survivors for t, m in a.seen("member_suspect", t_kill) if m == victim.name]
        rounds.append({
            "suspect_first_s": round(min(suspected, default=min(dead)) - t_kill, 3),
            "first_s": round(min(dead) - t_kill, 3),
            "all_s": round(max(dead) - t_kill, 3),
        })
        print(f"  {system} {n}: kill {r + 1}/{args.rounds}: {rounds[-1]}", flush=True)
        victim.close()
        t_restart = time.time()
        agents[i] = Agent(system, bin_, net, i, [seed], logdir)
        wait(f"{system} {n}: {victim.name} rejoins", 120,
             lambda: first_times(survivors, "member_joined", victim.name, t_restart))
        time.sleep(args.settle)
    return summarise(system, n, "kill", rounds, ["suspect_first_s", "first_s", "all_s"])


def cutoff(system, net, agents, args):
    """--rounds rounds of cutting one host off: time until every other host declares it dead,
    then, with the rules gone, until every death on either side has been undone."""
    n = len(agents)
    rounds = []
    for r in range(args.rounds):
        i = 1 + r % (n - 1)
        victim = agents[i]
        others = [a for a in agents if a is not victim]
        t_cut = time.time()
        net.cut_off(i)
        wait(f"{system} {n}: all others declare {victim.name} dead", 300,
             lambda: first_times(others, "member_dead", victim.name, t_cut))
        dead = first_times(others, "member_dead", victim.name, t_cut)
        # Let the host's own view lose everyone too, as it would behind a real cut.
        time.sleep(args.settle)
        t_heal = time.time()
        net.heal([i])
        wait(f"{system} {n}: {victim.name} merges back", 300, lambda: back_from_dead(agents, t_cut))
        rounds.append({
            "all_dead_s": round(max(dead) - t_cut, 3),
            "heal_s": round(back_from_dead(agents, t_cut) - t_heal, 3),
        })
        print(f"  {system} {n}: cut off {r + 1}/{args.rounds}: {rounds[-1]}", flush=True)
        time.sleep(args.settle)
    return summarise(system, n, "cutoff", rounds, ["all_dead_s", "heal_s"])


def partition(system, net, agents, args):
    """--rounds rounds of a 3 | rest split: once each side has declared the other dead, the
    rules go; the time until every host has seen every member of the other side come back."""
    n = len(agents)
    a, b = list(range(3)), list(range(3, n))
    rounds = []
    for r in range(args.rounds):
        t_split = time.time()
        net.partition([a, b])

        def split_seen():
            for side, other in ((a, b), (b, a)):
                for o in other:
                    if not first_times([agents[i] for i in side], "member_dead", agents[o].name, t_split):
                        return None
            return True

        wait(f"{system} {n}: each side declares the other dead", 300, split_seen)
        time.sleep(args.settle)
        t_heal = time.time()
        net.heal(range(n))
        wait(f"{system} {n}: one mesh again", 300, lambda: back_from_dead(agents, t_split))
        rounds.append({"heal_s": round(back_from_dead(agents, t_split) - t_heal, 3)})
        print(f"  {system} {n}: partition {r + 1}/{args.rounds}: {rounds[-1]}", flush=True)
        time.sleep(args.settle)
    return summarise(system, n, "partition", rounds, ["heal_s"])


def pauses(system, agents, args):
    """SIGSTOP one agent for each of --pauses seconds: how many hosts declared it (or anyone)
    dead, from the stop until --pause-watch seconds after the resume."""
    n = len(agents)
    victim = agents[n // 2]
    out = {}
    for secs in [float(x) for x in args.pauses.split(",")]:
        t_stop = time.time()
        victim.signal(signal.SIGSTOP)
        time.sleep(secs)  # the fault itself lasts this long
        victim.signal(signal.SIGCONT)
        time.sleep(args.pause_watch)
        deaths = [(a.name, m) for a in agents for _, m in a.seen("member_dead", t_stop)]
        key = f"pause_{secs:g}s_false_deaths"
        out[key] = len(deaths)
        print(f"  {system} {n}: SIGSTOP {secs:g} s: {len(deaths)} death events {sorted(set(deaths))}", flush=True)
        wait(f"{system} {n}: {victim.name} back after the pause", 300, lambda: back_from_dead(agents, t_stop))
        time.sleep(args.settle)
    return out


def losses(system, net, agents, args):
    """For each of --loss-percents, that much random loss on every host's link for
    --loss-secs: death events (all false: every agent stays up) and suspicion events."""
    n = len(agents)
    out = {"loss_secs": args.loss_secs}
    for pct in [int(x) for x in args.loss_percents.split(",")]:
        t_loss = time.time()
        net.loss(range(n), pct)
        time.sleep(args.loss_secs)
        net.heal(range(n))
        time.sleep(5)  # deaths raised during the loss may take a moment to be logged
        false = [(a.name, m) for a in agents for _, m in a.seen("member_dead", t_loss)]
        suspects = [(a.name, m) for a in agents for _, m in a.seen("member_suspect", t_loss)]
        out[f"loss_{pct}pct_false_deaths"] = len(false)
        out[f"loss_{pct}pct_suspicions"] = len(suspects)
        print(f"  {system} {n}: {len(false)} false death events ({len({m for _, m in false})} members), "
              f"{len(suspects)} suspicion events in {args.loss_secs:g} s of {pct}% loss", flush=True)
        wait(f"{system} {n}: whole again after {pct}% loss", 300, lambda: back_from_dead(agents, t_loss))
        time.sleep(args.settle)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="8")
    p.add_argument("--systems", default="serf,swimring")
    p.add_argument("--swimring-bin", default="target/release/swimring")
    p.add_argument("--serf-bin", default="serf")
    p.add_argument("--phases", default="detect,cutoff,partition,pause,loss",
                   help="which of detect,cutoff,partition,pause,loss to run (join and traffic always run)")
    p.add_argument("--steady-secs", type=float, default=20)
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--rounds", type=int, default=5, help="rounds of each of kill, cutoff and partition (medians reported)")
    p.add_argument("--pauses", default="1,3,5,8", help="SIGSTOP lengths, seconds")
    p.add_argument("--pause-watch", type=float, default=10, help="seconds watched after each resume")
    p.add_argument("--loss-percents", default="10,20")
    p.add_argument("--loss-secs", type=float, default=120)
    p.add_argument("--out", default="compare-serf.json")
    p.add_argument("--logdir", default="/tmp/compare-serf-logs")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("compare_serf.py needs root (network namespaces, veth, nft)")
    unknown = set(args.phases.split(",")) - {"detect", "cutoff", "partition", "pause", "loss"}
    if unknown:
        sys.exit(f"unknown phases: {', '.join(sorted(unknown))}")
    os.makedirs(args.logdir, exist_ok=True)
    remove_stale()
    bins = {"serf": args.serf_bin, "swimring": os.path.abspath(args.swimring_bin)}
    systems = args.systems.split(",")
    for s in systems:
        if s not in bins:
            sys.exit(f"unknown system {s}")
        b = bins[s]
        if not (os.path.isfile(b) or subprocess.run(["which", b], capture_output=True).returncode == 0):
            sys.exit(f"{s} binary {b} not found")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for s in systems:
            print(f"== {s}, {n} nodes", flush=True)
            r = run_one(s, bins[s], n, args, args.logdir)
            results.append(r)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print_table(results)


def print_table(results):
    keys = sorted({k for r in results for k, v in r.items() if isinstance(v, (int, float)) and k != "nodes"})
    print("\n| nodes | metric | swimring | serf | swimring/serf |")
    print("| ---: | --- | ---: | ---: | ---: |")
    by = {(r["system"], r["nodes"]): r for r in results}
    for n in sorted({r["nodes"] for r in results}):
        for k in keys:
            sw = by.get(("swimring", n), {}).get(k)
            se = by.get(("serf", n), {}).get(k)
            ratio = f"{sw / se:.2f}" if sw is not None and se else "–"
            fmt = lambda v: "–" if v is None else str(v)
            print(f"| {n} | {k} | {fmt(sw)} | {fmt(se)} | {ratio} |")


if __name__ == "__main__":
    main()
