//! Real-network fault tests: every agent runs on its own host (a network namespace on a
//! shared bridge), talks real UDP and TCP, and faults are injected from outside: `kill -9`,
//! SIGSTOP/SIGCONT, nft partitions and random loss. Bounds come from the protocol timings
//! (see `Bounds` in `netns/harness.rs`), and every wait polls the agents' control endpoints
//! or event logs up to its bound. docs/NETNS.md explains the layout and each scenario.
//!
//! They need root, so they are `#[ignore]`d for a plain `cargo test`; `.ci/run` runs them
//! with `cargo test --test netns -- --ignored --test-threads=1`. `NETNS_AGENT=serf` runs the
//! same scenarios against serf, to check the harness itself.

// The tests measure wall-clock time against protocol bounds, so they read the clock.
#![allow(clippy::disallowed_methods)]

#[path = "netns/harness.rs"]
mod harness;

use std::thread;
use std::time::{Duration, Instant};

use harness::{Agent, Cluster, POLL, unix_now};
use swimring::Preset;

/// Hosts in each scenario (the issue asks for 8 or more).
const HOSTS: usize = 8;

fn tasks() -> Vec<String> {
    (0..32).map(|i| format!("task-{i:02}")).collect()
}

fn cluster(preset: Preset, n: usize) -> Cluster {
    Cluster::start(Agent::from_env(preset), n, tasks())
}

/// Fails if any host logged `member_dead` at or after `since`.
fn assert_no_deaths(c: &Cluster, since: f64, context: &str) {
    let deaths = c.events_since("member_dead", since);
    assert!(
        deaths.is_empty(),
        "{context}: live members were declared dead: {:?}",
        deaths
            .iter()
            .map(|e| format!(
                "{} declared {} dead at +{:.2}s",
                c.hosts[e.host].name,
                e.member,
                e.ts - since
            ))
            .collect::<Vec<_>>()
    );
}

/// Ten hosts join through one seed; each sees all ten alive, the swimring agents agree on
/// the ring, and every task has exactly one owner.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn ten_hosts_converge() {
    let c = cluster(Preset::Local, 10);
    let all = c.all();
    if c.agent.is_swimring() {
        harness::wait_until(
            "all agents report the same ring checksum",
            c.bounds.join(10),
            || {
                let sums = all
                    .iter()
                    .map(|&i| {
                        let s = c.status(i)?;
                        s["ring_checksum"]
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("host {i}: no ring_checksum in {s}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if sums.windows(2).all(|w| w[0] == w[1]) {
                    Ok(())
                } else {
                    Err(format!("checksums differ: {sums:?}"))
                }
            },
        );
    }
    c.wait_tasks_once(&all, c.bounds.join(10));
    assert_no_deaths(&c, 0.0, "while converging");
}

/// Sum of one counter over `hosts`' status (swimring only).
fn counter(c: &Cluster, hosts: &[usize], name: &str) -> u64 {
    hosts
        .iter()
        .filter_map(|&i| c.status(i).ok())
        .filter_map(|s| s["counters"][name].as_u64())
        .sum()
}

/// Removes the network faults; every host must then see every other alive, and place every
/// task once, within the heal bound. Prints how long the merge took, as `what`.
fn heal_and_merge(c: &Cluster, what: &str) {
    c.heal();
    let all = c.all();
    let heal = c.bounds.heal(HOSTS);
    let took = c.wait_all_alive(&all, heal);
    eprintln!("netns: {what} {took:.2?} after healing (bound {heal:.2?})");
    c.wait_tasks_once(&all, heal);
}

/// `kill -9` one agent on the lan preset: its host's kernel now refuses its ports, so every
/// survivor marks it dead within the crash-evidence bound (a probe round, a failed probe and
/// the rumour's spread, with slack; serf gets the silent-host bound), the death rests on
/// that evidence, nobody else is declared dead, and its tasks move so each has exactly one
/// owner among the survivors.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn killed_agent_is_declared_dead_on_evidence_by_every_survivor() {
    let mut c = cluster(Preset::Lan, HOSTS);
    let victim = 5;
    let survivors: Vec<usize> = c.all().into_iter().filter(|&i| i != victim).collect();
    let bound = c.bounds.crash(HOSTS);
    let t0 = unix_now();
    c.kill(victim);
    let took = c.wait_state(&survivors, &[victim], "dead", bound);
    let name = &c.hosts[victim].name;
    let mut detected: Vec<f64> = c
        .events_since("member_dead", t0)
        .iter()
        .filter(|e| &e.member == name)
        .map(|e| e.ts - t0)
        .collect();
    detected.sort_by(f64::total_cmp);
    eprintln!(
        "netns: {name} seen dead by all survivors in {took:.2?} (bound {bound:.2?}); \
         event times {detected:.2?}"
    );
    let others: Vec<_> = c
        .events_since("member_dead", t0)
        .into_iter()
        .filter(|e| &e.member != name)
        .collect();
    assert!(others.is_empty(), "survivors declared dead: {others:?}");
    if c.agent.is_swimring() {
        let on_evidence = counter(&c, &survivors, "deaths_on_evidence");
        assert!(on_evidence >= 1, "{name}'s death rested on no evidence");
    }
    c.wait_tasks_once(&survivors, c.bounds.detect(HOSTS));
}

/// Host 4 is cut off (every packet to and from it dropped, as a host that lost power): its
/// silence gives no evidence, so every other host marks it dead within the patient
/// detection bound (a probe round, the maximum suspicion timeout and the spread, with
/// slack), and nobody else dies. Reconnected, it is one mesh with the rest again within the
/// heal bound.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn a_host_cut_off_is_declared_dead_then_merges_back() {
    let c = cluster(Preset::Lan, HOSTS);
    let victim = 4;
    let others: Vec<usize> = c.all().into_iter().filter(|&i| i != victim).collect();
    let bound = c.bounds.detect(HOSTS);
    let t0 = unix_now();
    c.cut_off(victim);
    let took = c.wait_state(&others, &[victim], "dead", bound);
    let name = &c.hosts[victim].name;
    eprintln!("netns: {name} cut off, seen dead by all others in {took:.2?} (bound {bound:.2?})");
    let wrong: Vec<_> = c
        .events_since("member_dead", t0)
        .into_iter()
        .filter(|e| e.host != victim && &e.member != name)
        .collect();
    assert!(wrong.is_empty(), "connected hosts declared dead: {wrong:?}");
    if c.agent.is_swimring() {
        assert_eq!(
            counter(&c, &others, "deaths_on_evidence"),
            0,
            "a silent host gave evidence"
        );
    }
    heal_and_merge(&c, &format!("{name} back in the mesh"));
}

/// SIGSTOP one agent for 5 s on the lan preset, then SIGCONT. Its host's kernel still
/// completes stream handshakes, so the probes that fail find its host up and give it the
/// stall patience (`stall_timeout`): it may be suspected, but it refutes in time, so nobody
/// (it included) is ever declared dead, watched until any suspicion raised during the pause
/// must have ended.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn a_five_second_pause_declares_nobody_dead() {
    let mut c = cluster(Preset::Lan, HOSTS);
    let target = 3;
    let pause = Duration::from_secs(5);
    let watch = pause
        + c.bounds.probe_failure()
        + c.bounds.longest_suspicion(HOSTS)
        + c.bounds.spread(HOSTS)
        + Duration::from_secs(2);
    let t0 = unix_now();
    let start = Instant::now();
    c.pause(target);
    thread::sleep(pause); // the fault itself lasts this long; nothing is awaited here
    c.resume(target);
    let all = c.all();
    c.wait_all_alive(&all, c.bounds.detect(HOSTS));
    while start.elapsed() < watch {
        assert_no_deaths(&c, t0, "during and after a pause");
        thread::sleep(POLL);
    }
    assert_no_deaths(&c, t0, "during and after a pause");
    let suspected = c
        .events_since("member_suspect", t0)
        .iter()
        .filter(|e| e.member == c.hosts[target].name)
        .count();
    eprintln!(
        "netns: paused {:?}, watched {watch:.2?}: {suspected} suspicion events, no deaths",
        pause
    );
    c.wait_all_alive(&all, c.bounds.join(HOSTS));
    c.wait_tasks_once(&all, c.bounds.join(HOSTS));
}

/// One host receives no UDP at all (a firewall that passes only TCP). Every datagram probe
/// of it fails, directly and through the relays, but the stream (TCP) fallback probe reaches
/// it, so nobody declares it dead, watched for as long as a crashed host takes to be declared
/// dead everywhere. The other hosts' indirect probes show the UDP path really failed.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn a_host_that_gets_no_udp_stays_alive_through_the_tcp_fallback_probe() {
    let c = cluster(Preset::Lan, HOSTS);
    let target = HOSTS - 1;
    let others: Vec<usize> = (0..target).collect();
    let indirect = |c: &Cluster| counter(c, &others, "indirect_probes_sent");
    let before = c.agent.is_swimring().then(|| indirect(&c));
    let t0 = unix_now();
    let start = Instant::now();
    c.block_udp_to(target);
    let watch = c.bounds.detect(HOSTS);
    while start.elapsed() < watch {
        assert_no_deaths(&c, t0, "with UDP to one host blocked");
        thread::sleep(POLL);
    }
    assert_no_deaths(&c, t0, "with UDP to one host blocked");
    if let Some(before) = before {
        let sent = indirect(&c) - before;
        assert!(
            sent > 0,
            "no probe of the host failed over UDP: was it blocked?"
        );
        eprintln!(
            "netns: UDP to one host blocked for {watch:.2?}: {sent} indirect probes, no deaths"
        );
    }
    c.heal();
    let all = c.all();
    c.wait_all_alive(&all, c.bounds.join(HOSTS));
}

/// Partition 3 | 5 on the lan preset: each side marks the other dead and places every task
/// once within itself; after healing, with no manual rejoin, all eight are one mesh again
/// within the heal bound (the pings to dead members find the other side, and the push-pull
/// their acks start carries each side's verdicts to refute), and every task has exactly one
/// owner.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn partition_three_five_splits_then_heals_by_itself() {
    let c = cluster(Preset::Lan, HOSTS);
    let a: Vec<usize> = (0..3).collect();
    let b: Vec<usize> = (3..HOSTS).collect();
    c.partition(&[&a, &b]);
    let bound = c.bounds.detect(HOSTS);
    let ta = c.wait_state(&a, &b, "dead", bound);
    let tb = c.wait_state(&b, &a, "dead", bound);
    eprintln!("netns: partition seen: side A after {ta:.2?}, side B after a further {tb:.2?}");
    c.wait_all_alive(&a, bound);
    c.wait_all_alive(&b, bound);
    c.wait_tasks_once(&a, bound);
    c.wait_tasks_once(&b, bound);
    heal_and_merge(&c, "one mesh again");
}

/// 10% random loss on every host's link for two minutes, lan preset (the timings a real
/// deployment runs): no live member is ever declared dead, and the mesh is whole afterwards.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn ten_percent_loss_for_two_minutes_declares_nobody_dead() {
    let c = cluster(Preset::Lan, HOSTS);
    let all = c.all();
    let period = Duration::from_secs(120);
    let t0 = unix_now();
    let start = Instant::now();
    c.loss(&all, 10);
    while start.elapsed() < period {
        assert_no_deaths(&c, t0, "under 10% loss");
        thread::sleep(Duration::from_millis(500));
    }
    c.heal();
    assert_no_deaths(&c, t0, "under 10% loss");
    let suspicions = c.events_since("member_suspect", t0).len();
    eprintln!("netns: 120 s at 10% loss: {suspicions} suspicion events, no deaths");
    c.wait_all_alive(&all, c.bounds.join(HOSTS));
    assert_no_deaths(&c, t0, "after 10% loss");
    c.wait_tasks_once(&all, c.bounds.join(HOSTS));
}

/// `kill -9` one host and start it again at once with the same name and address: every
/// member accepts the new process as a new run of that member (alive, a different run), and
/// tasks settle with one owner each.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn restarted_host_is_accepted_as_new_run() {
    let mut c = cluster(Preset::Local, HOSTS);
    let target = 2;
    let name = c.hosts[target].name.clone();
    let before = c
        .members(0)
        .expect("members")
        .into_iter()
        .find(|v| v.name == name)
        .expect("target known");
    c.kill(target);
    let seeds = c.live_seeds(target, 2);
    c.spawn(target, &seeds);
    c.wait_ready(target);
    let all = c.all();
    let bound = c.bounds.detect(HOSTS);
    let (_, took) = harness::wait_until(
        &format!(
            "every host sees {name} alive with a run other than {:?}",
            before.run
        ),
        bound,
        || {
            for &i in &all {
                let v = c
                    .members(i)?
                    .into_iter()
                    .find(|v| v.name == name)
                    .ok_or_else(|| format!("host {i} does not know {name}"))?;
                if v.state != "alive" || (c.agent.is_swimring() && v.run == before.run) {
                    return Err(format!("host {i} sees {v:?}"));
                }
            }
            Ok(())
        },
    );
    eprintln!("netns: restarted {name} accepted as a new run by all in {took:.2?}");
    c.wait_all_alive(&all, bound);
    c.wait_tasks_once(&all, bound);
}

/// SIGINT one host: it leaves gracefully (exit 0) and every other host sees it left, not
/// dead; started again, it is accepted back as a new run.
#[test]
#[ignore = "needs root and network namespaces: run by .ci/run"]
fn graceful_leave_then_rejoin() {
    let mut c = cluster(Preset::Local, HOSTS);
    let target = 6;
    let rest: Vec<usize> = c.all().into_iter().filter(|&i| i != target).collect();
    let t0 = unix_now();
    let status = c.stop(target, Duration::from_secs(10));
    assert!(status.success(), "agent exited with {status} on SIGINT");
    let bound = c.bounds.detect(HOSTS);
    c.wait_state(&rest, &[target], "left", bound);
    assert_no_deaths(&c, t0, "after a graceful leave");
    c.wait_tasks_once(&rest, bound);
    let seeds = c.live_seeds(target, 2);
    c.spawn(target, &seeds);
    c.wait_ready(target);
    let all = c.all();
    c.wait_all_alive(&all, c.bounds.join(HOSTS));
    c.wait_tasks_once(&all, bound);
}
