#!/usr/bin/env python3
"""Side-by-side benchmark: swimring's lan preset against serf's default LAN profile.

Both run on the same kind of hosts: one network namespace per agent on a private bridge
(all inside namespaces this script creates; nothing leaves them). For each system and size:

  join      start host 0, then all others seeded with it: time until every agent has
            seen every other join (from the agents' own event streams), and the same for the
            median host (one lost rumour delays the first figure to the next push-pull)
  traffic   bytes each host sends per second in a steady, healthy mesh (veth counters), and
            each agent's CPU (utime + stime from /proc) over the same window
  detect    --kills rounds of kill -9 one agent (then restart it): time until the first
            survivor suspects it, and until the first and the last survivor declare it dead
            (event timestamps); medians over the rounds, and the slowest round
  loss      10% random loss on every survivor's link (nft numgen) for --loss-secs: how many
            times a live member is declared dead. Suspicions are counted too, but do not
            compare them: swimring emits member_suspect on every member that hears of one,
            serf logs only on the member that raised it.

Event times: swimring prints `{"ts": ..., "event": ...}` lines with --events json and its own
timestamp. serf's event handlers are coalesced (up to 3 s), which would blur detection, so
serf's log lines (written the moment memberlist tells serf) are stamped as they arrive.

Needs root, iproute2, nftables and serf. Run as root:
  scripts/compare_serf.py --sizes 10,30,60 --systems serf,swimring --swimring-bin target/release/swimring
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

    def loss(self, idxs, percent):
        for i in idxs:
            rules = ("table inet swrbfault {\n  chain input {\n"
                     "    type filter hook input priority 0; policy accept;\n"
                     f"    iifname \"eth0\" numgen random mod 100 < {percent} drop\n  }}\n}}\n")
            sh("ip", "netns", "exec", self.hosts[i][0], "nft", "-f", "-", input=rules)

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

        out.update(detect(system, bin_, net, agents, seed, args, logdir))
        if args.loss_secs <= 0:
            return out

        # The last victim stays dead; the others run 10% loss on their links.
        survivors = agents[:-1]
        victim = agents[-1].name
        time.sleep(args.settle)
        t_loss = time.time()
        net.loss(range(n - 1), 10)
        time.sleep(args.loss_secs)
        net.heal(range(n - 1))
        time.sleep(5)  # deaths raised during the loss may take a moment to be logged
        false = [(a.name, m) for a in survivors for t, m in a.seen("member_dead", t_loss) if m != victim]
        suspects = [(a.name, m) for a in survivors for t, m in a.seen("member_suspect", t_loss) if m != victim]
        out["loss_secs"] = args.loss_secs
        out["false_deaths"] = len(false)
        out["false_dead_members"] = len({m for _, m in false})
        out["suspicions"] = len(suspects)
        print(f"  {system} {n}: {len(false)} false death events ({out['false_dead_members']} members), "
              f"{len(suspects)} suspicion events in {args.loss_secs}s of 10% loss", flush=True)
    finally:
        for a in agents:
            a.close()
        net.close()
    return out


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def detect(system, bin_, net, agents, seed, args, logdir):
    """--kills rounds of: kill -9 one agent, time until the first survivor suspects it and until
    the first and the last survivor declare it dead, then restart it under the same name and
    wait until every other agent has seen it join again. Each round's victim is another host
    (never host 0); the last one stays dead. One kill is one random draw (who probes the victim
    first, how many peers confirm), so the medians over the rounds are what to compare."""
    n = len(agents)
    rounds = []
    for r in range(args.kills):
        i = n - 1 - r % (n - 1)
        victim = agents[i]
        survivors = [a for a in agents if a is not victim]
        t_kill = time.time()
        victim.kill()

        def first_times(event):
            times = []
            for a in survivors:
                ts = [t for t, m in a.seen(event, t_kill) if m == victim.name]
                if not ts:
                    return None
                times.append(min(ts))
            return times

        wait(f"{system} {n}: all survivors declare {victim.name} dead", 300, lambda: first_times("member_dead"))
        dead = first_times("member_dead")
        suspected = [t for a in survivors for t, m in a.seen("member_suspect", t_kill) if m == victim.name]
        rounds.append({
            "suspect_first_s": round(min(suspected, default=min(dead)) - t_kill, 3),
            "detect_first_s": round(min(dead) - t_kill, 3),
            "detect_all_s": round(max(dead) - t_kill, 3),
        })
        print(f"  {system} {n}: kill {r + 1}/{args.kills}: {rounds[-1]}", flush=True)
        if r + 1 == args.kills:
            agents.append(agents.pop(i))  # the dead one last, for the loss phase
            break
        victim.close()
        t_restart = time.time()
        agents[i] = Agent(system, bin_, net, i, [seed], logdir)
        wait(f"{system} {n}: {victim.name} rejoins", 120, lambda: all(
            any(m == victim.name for _, m in a.seen("member_joined", t_restart)) for a in survivors))
        time.sleep(args.settle)
    out = {"kills": rounds}
    for k in ("suspect_first_s", "detect_first_s", "detect_all_s"):
        out[k] = round(median([r[k] for r in rounds]), 3)
    out["detect_all_max_s"] = max(r["detect_all_s"] for r in rounds)
    print(f"  {system} {n}: medians over {args.kills} kills: suspect {out['suspect_first_s']} s, "
          f"dead first {out['detect_first_s']} s, all {out['detect_all_s']} s "
          f"(slowest {out['detect_all_max_s']} s)", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10,30,60")
    p.add_argument("--systems", default="serf,swimring")
    p.add_argument("--swimring-bin", default="target/release/swimring")
    p.add_argument("--serf-bin", default="serf")
    p.add_argument("--steady-secs", type=float, default=20)
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--kills", type=int, default=8, help="kill -9 rounds (medians reported)")
    p.add_argument("--loss-secs", type=float, default=120, help="0 skips the loss phase")
    p.add_argument("--out", default="compare-serf.json")
    p.add_argument("--logdir", default="/tmp/compare-serf-logs")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("compare_serf.py needs root (network namespaces, veth, nft)")
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
    keys = ["join_s", "join_median_host_s", "suspect_first_s", "detect_first_s", "detect_all_s", "detect_all_max_s",
            "bytes_per_node_s", "cpu_pct_per_node", "false_deaths"]
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
