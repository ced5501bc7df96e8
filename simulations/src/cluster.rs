//! The event loop: nodes, a virtual clock, and packets in flight.
//!
//! Time is a count of virtual nanoseconds; it jumps from one queued event to the next (there
//! are no ticks). Each node has at most one live timer: the engine remembers the instant it
//! last queued for the node and ignores older queued wake-ups (a stale-timer check, O(1)),
//! so rescheduling never searches the heap. Packets are `Bytes` and travel inside the heap
//! entries. Nothing is O(n) per event. What each node's kernel says besides the protocol's
//! packets (refusals, held sockets) is the kernel model (`cluster/kernel.rs`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use swimring::proto::{Channel, Config, Event, Identity, Interner, Member, SeedRetry, Swim};
use swimring::wire::codec::{Limits, Transport};
use swimring::wire::{Reach, State};

use crate::metrics::Metrics;
use crate::network::{Fate, Network};
use crate::tasks::Tasks;

mod bug;
mod invariants;
mod kernel;
mod user_events;

use kernel::Inbox;
pub use kernel::{ACCEPT_BACKLOG, KernelStats, RECV_BUFFER_BYTES, RECV_BUFFER_DATAGRAMS};
pub use user_events::{DeliveredEvent, UserEventReach};

/// Index of a node slot in a [`Cluster`]. A restarted node keeps its slot.
pub type NodeId = usize;

/// An event a node reported, with the virtual time it happened at.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The event.
    pub event: Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Paused,
    /// The process is gone; its host refuses its port.
    Crashed,
    /// The host itself is gone: nothing answers.
    HostDown,
}

struct Node {
    swim: Swim,
    status: Status,
    /// The wake-up (virtual ns) currently queued for this node; older queued ones are stale.
    wake: u64,
    events: Vec<Observed>,
    /// Highest (run, incarnation) this node has held for itself (invariant checks).
    own: (u64, u32),
    /// The seeds of its last join, and the core's backoff for trying them again.
    seeds: Vec<NodeId>,
    retry: SeedRetry,
    /// What its kernel holds for it while it is paused.
    inbox: Inbox,
}

enum Delivery {
    Timer,
    /// Time to try the seeds again, for the run that joined (a restart starts its own).
    SeedRetry {
        run: u64,
    },
    Datagram {
        from: u32,
        bytes: Bytes,
    },
    StreamRequest {
        from: u32,
        bytes: Bytes,
    },
    StreamReply {
        bytes: Bytes,
    },
    /// The receiver's kernel learned something about slot `target`'s host (a refusal, a
    /// completed handshake): handed to the core as [`Swim::handle_reach`].
    Reach {
        target: u32,
        reach: Reach,
    },
    /// Task mode: the placement due for this run (see [`Tasks::request`]).
    Place {
        run: u64,
    },
}

struct Entry {
    at: u64,
    seq: u64,
    to: u32,
    what: Delivery,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: the heap pops the earliest (then first queued) entry.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// A deliberately broken node behaviour, for proving the sweep catches bugs. It lives in the
/// simulator (a wrapper around the node's output), never in the protocol core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bug {
    /// No bug.
    #[default]
    None,
    /// Every node's outgoing alive rumours about itself with an incarnation above 0 are
    /// dropped (from datagrams and from full-state exchanges): refutation never leaves the
    /// node, so a suspicion it could refute kills it anyway.
    DropOwnRefutation,
    /// In task mode, a placement change that gains or loses tasks leaves the node's epoch
    /// where it was instead of advancing it, so a new owner's token need not pass the token
    /// its predecessor last held the task by.
    StaleEpoch,
}

/// Counters of the engine itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineStats {
    /// Inputs handed to nodes (timers, datagrams, streams).
    pub processed: u64,
    /// Heap entries popped, stale timers and packets to stopped nodes included.
    pub popped: u64,
    /// Datagrams lost by the network (the kernels' ICMP refusals included).
    pub dropped: u64,
    /// Datagrams duplicated by the network (ICMP refusals included).
    pub duplicated: u64,
    /// What the nodes' kernels did (see the kernel model, `cluster/kernel.rs`).
    pub kernel: KernelStats,
}

/// A simulated mesh on virtual time.
pub struct Cluster {
    base: Instant,
    now: u64,
    rng: ChaCha8Rng,
    /// The fault model; change it at any time.
    pub net: Network,
    nodes: Vec<Node>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    stats: EngineStats,
    /// Measurements, kept from the nodes' events.
    pub metrics: Metrics,
    record: bool,
    check: bool,
    violations: Vec<String>,
    /// Last (run, incarnation) each observer held for each member (invariant checks only).
    seen: HashMap<(u32, u32), (u64, u32)>,
    bug: Bug,
    limits: Limits,
    /// Shared by every node, so each distinct name and member record is held once, not once
    /// per observer.
    names: Interner,
    /// Task mode: every node's task table and the ledger of who holds what.
    tasks: Option<Tasks>,
    /// What each node delivered of the user events broadcast.
    user_events: user_events::UserEventLog,
}

/// The address simulated node `i` has: unique, never used on a real network.
pub fn addr_of(i: NodeId) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 7946))
}

/// The slot behind an address made by [`addr_of`].
pub fn slot_of(addr: SocketAddr) -> Option<NodeId> {
    match addr.ip() {
        IpAddr::V4(ip) if addr.port() == 7946 => {
            let o = ip.octets();
            (o[0] == 10).then(|| (o[1] as usize) << 16 | (o[2] as usize) << 8 | o[3] as usize)
        }
        _ => None,
    }
}

const SECOND: u64 = 1_000_000_000;

impl Cluster {
    /// An empty cluster whose every random choice derives from `seed`. It records every
    /// node's events (see [`Cluster::set_recording`]) and samples metrics every 100 ms.
    pub fn new(seed: u64) -> Cluster {
        // The one real instant: the epoch virtual time counts from. Nothing reads it again,
        // and no output depends on it.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        Cluster {
            base,
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            net: Network::default(),
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: EngineStats::default(),
            metrics: Metrics::new(SECOND / 10),
            record: true,
            check: false,
            violations: Vec::new(),
            seen: HashMap::new(),
            bug: Bug::None,
            limits: Limits {
                max_stream: 64 << 20,
                max_meta: 512,
                max_members: 1 << 20,
            },
            names: Interner::default(),
            tasks: None,
            user_events: Default::default(),
        }
    }

    /// Whether to keep every node's events in memory ([`Cluster::events`]). Off for large
    /// runs: the metrics do not need them.
    pub fn set_recording(&mut self, on: bool) {
        self.record = on;
    }

    /// Sets the metrics sampling grid. Call before adding nodes.
    pub fn set_sample_interval(&mut self, every: Duration) {
        self.metrics = Metrics::new(every.as_nanos() as u64);
    }

    /// Checks the protocol's invariants after every input (costs memory per member pair; for
    /// sweeps of small meshes). Violations are listed by [`Cluster::violations`].
    pub fn set_checking(&mut self, on: bool) {
        self.check = on;
    }

    /// Injects a deliberate bug.
    pub fn set_bug(&mut self, bug: Bug) {
        self.bug = bug;
        if let Some(t) = &mut self.tasks {
            t.set_stale_epoch(bug == Bug::StaleEpoch);
        }
    }

    /// Task mode: every node holds a `LocalTasks` over `n` task keys and follows its view
    /// with it, and every run is distinct (see [`Tasks`]). Off by default: it costs a ring per
    /// node and changes the trace (handoffs advance the epoch, which then travels in
    /// datagrams, and runs are start times). Call before adding nodes, so that every node
    /// gets its own run.
    pub fn enable_tasks(&mut self, n: usize) {
        assert!(self.nodes.is_empty(), "task mode is enabled before nodes");
        let mut tasks = Tasks::new(n);
        tasks.set_stale_epoch(self.bug == Bug::StaleEpoch);
        self.tasks = Some(tasks);
    }

    /// The task tables and their ledger, in task mode.
    pub fn tasks(&self) -> Option<&Tasks> {
        self.tasks.as_ref()
    }

    /// Invariant violations found so far, each with its virtual time.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Virtual time since the cluster started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    fn instant(&self, t: u64) -> Instant {
        self.base + Duration::from_nanos(t)
    }

    /// Inputs handed to nodes so far.
    pub fn processed(&self) -> u64 {
        self.stats.processed
    }

    /// The engine's own counters.
    pub fn engine_stats(&self) -> EngineStats {
        self.stats
    }

    /// Number of node slots.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a running node named `name` that knows only itself.
    pub fn add_node(&mut self, name: &str, cfg: Config) -> NodeId {
        let id = self.nodes.len();
        let run = self.new_run(0);
        let swim = self.boot(id, name, cfg, run);
        self.net.add_node();
        self.metrics.node_added(self.now, id as u32, name, run);
        self.nodes.push(Node {
            retry: SeedRetry::new(swim.config()),
            swim,
            status: Status::Running,
            wake: u64::MAX,
            events: Vec::new(),
            own: (run, 0),
            seeds: Vec::new(),
            inbox: Inbox::default(),
        });
        if let Some(t) = &mut self.tasks {
            t.boot(id, &mut self.nodes[id].swim);
        }
        self.drain(id);
        id
    }

    /// The run of a node starting now whose previous run was `prev` (0: none): the next
    /// count without task mode, which keeps every trace as it was; a start time with it.
    fn new_run(&mut self, prev: u64) -> u64 {
        match &mut self.tasks {
            Some(t) => t.next_run(self.now),
            None => prev + 1,
        }
    }

    fn boot(&mut self, id: NodeId, name: &str, cfg: Config, run: u64) -> Swim {
        let ident = Identity {
            name: name.to_owned(),
            addr: addr_of(id),
            run,
            meta: Bytes::new(),
        };
        let now = self.instant(self.now);
        Swim::with_interner(cfg, ident, self.rng.random(), now, self.names.clone())
            .expect("valid simulation config")
    }

    /// Every running node learns every other running node as alive, at once and without a
    /// message ([`Swim::assume_alive`]): the view a cold start converges to.
    pub fn introduce_all(&mut self) {
        let view: Vec<Member> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .map(|i| self.nodes[i].swim.local().clone())
            .collect();
        let now = self.instant(self.now);
        for id in 0..self.nodes.len() {
            if self.is_running(id) {
                self.nodes[id].swim.assume_alive(now, &view);
                self.drain(id);
            }
        }
    }

    /// The protocol state of node `id`.
    pub fn node(&self, id: NodeId) -> &Swim {
        &self.nodes[id].swim
    }

    /// Events node `id` has reported (empty unless recording).
    pub fn events(&self, id: NodeId) -> &[Observed] {
        &self.nodes[id].events
    }

    /// Whether node `id` is running (not paused, crashed or down).
    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes[id].status == Status::Running
    }

    /// Whether node `id` is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.nodes[id].status == Status::Paused
    }

    /// What `observer` believes about the node in slot `target`.
    pub fn view(&self, observer: NodeId, target: NodeId) -> Option<&Member> {
        let name = &self.nodes[target].swim.local().name;
        self.nodes[observer].swim.member(name)
    }

    /// The state `observer` holds for `target`, if it knows it.
    pub fn state(&self, observer: NodeId, target: NodeId) -> Option<State> {
        self.view(observer, target).map(|m| m.state)
    }

    /// Node `id` starts a full-state exchange with each node in `seeds` (a node that has left
    /// is refused by the core and stays out).
    pub fn join(&mut self, id: NodeId, seeds: &[NodeId]) {
        let addrs: Vec<SocketAddr> = seeds.iter().map(|&s| addr_of(s)).collect();
        let now = self.instant(self.now);
        let node = &mut self.nodes[id];
        if node.swim.join(now, &addrs).is_err() {
            return;
        }
        node.seeds = seeds.to_vec();
        node.retry = SeedRetry::new(node.swim.config());
        if let Some(t) = &mut self.tasks {
            t.join(id, !seeds.is_empty());
        }
        let run = node.swim.local().run;
        let at = self.now + node.retry.next_delay().as_nanos() as u64;
        self.schedule(at, id, Delivery::SeedRetry { run });
        self.drain(id);
    }

    /// Node `id` leaves gracefully.
    pub fn leave(&mut self, id: NodeId) {
        let now = self.instant(self.now);
        self.nodes[id].swim.leave(now);
        self.metrics.left(self.now, id as u32);
        // Its own state changed: it gives its tasks up at its next placement.
        self.request_placement(id);
        self.drain(id);
    }

    /// Node `id`'s process stops at once: no more packets, no more timers. Its host stays up
    /// and refuses what is sent to it (see the kernel model, `cluster/kernel.rs`).
    pub fn crash(&mut self, id: NodeId) {
        self.stop(id, Status::Crashed);
    }

    /// Node `id`'s host goes down (or off the network for good): like [`Cluster::crash`],
    /// but nothing answers, not even a refusal.
    pub fn host_down(&mut self, id: NodeId) {
        self.stop(id, Status::HostDown);
    }

    fn stop(&mut self, id: NodeId, how: Status) {
        let was = self.nodes[id].status;
        if was == how {
            return;
        }
        self.nodes[id].status = how;
        self.nodes[id].inbox.clear();
        // A crashed process whose host then goes down is one failure, not two.
        if !matches!(was, Status::Crashed | Status::HostDown) {
            self.metrics.crashed(self.now, id as u32);
            if let Some(t) = &mut self.tasks {
                t.crash(id, self.now, self.nodes[id].swim.epoch());
            }
        }
    }

    /// Node `id` stalls (like SIGSTOP): its kernel keeps its sockets, so datagrams and stream
    /// requests sent to it meanwhile wait for it (bounded, see the module's kernel model).
    pub fn pause(&mut self, id: NodeId) {
        if self.nodes[id].status == Status::Running {
            self.nodes[id].status = Status::Paused;
            self.metrics.paused(self.now, id as u32);
        }
    }

    /// A paused node carries on, first running every timer that fell due while it slept.
    pub fn resume(&mut self, id: NodeId) {
        if self.nodes[id].status != Status::Paused {
            return;
        }
        self.nodes[id].status = Status::Running;
        self.metrics.resumed(self.now, id as u32);
        let now = self.instant(self.now);
        self.nodes[id].swim.handle_timeout(now);
        self.drain(id);
        self.flush_inbox(id);
        // A placement that fell due during the pause was skipped when it popped (every
        // entry up to now has): it runs now.
        let missed = self.tasks.as_ref().and_then(|t| t.due(id));
        if missed.is_some_and(|due| due <= self.now) {
            let run = self.nodes[id].swim.local().run;
            self.schedule(self.now, id, Delivery::Place { run });
        }
    }

    /// Node `id` restarts under the same name and address as a new run, then joins `seeds`.
    pub fn restart(&mut self, id: NodeId, seeds: &[NodeId]) {
        let name = self.nodes[id].swim.local().name.clone();
        let cfg = self.nodes[id].swim.config().clone();
        let run = self.new_run(self.nodes[id].swim.local().run);
        self.nodes[id].swim = self.boot(id, &name, cfg, run);
        self.nodes[id].status = Status::Running;
        self.nodes[id].inbox.clear();
        self.nodes[id].own = (run, 0);
        self.metrics.restarted(self.now, id as u32, run);
        if let Some(t) = &mut self.tasks {
            t.boot(id, &mut self.nodes[id].swim);
        }
        if self.check {
            self.seen.retain(|&(o, _), _| o != id as u32);
        }
        self.drain(id);
        self.join(id, seeds);
    }

    /// Runs until virtual time `d` has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d.as_nanos() as u64;
        self.run_to(until);
    }

    /// Runs until the virtual instant `until` (ns since the start).
    pub fn run_to(&mut self, until: u64) {
        while self.step_before(until) {}
        self.advance(until);
    }

    fn advance(&mut self, to: u64) {
        while self.metrics.next_sample() <= to {
            self.metrics.sample();
        }
        self.now = self.now.max(to);
    }

    /// Runs until `done` holds (checked after every event) or `limit` of virtual time has
    /// passed. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let until = self.now + limit.as_nanos() as u64;
        loop {
            if done(self) {
                return true;
            }
            if !self.step_before(until) {
                self.advance(until);
                return done(self);
            }
        }
    }

    /// Processes the next event if it falls at or before `until`.
    fn step_before(&mut self, until: u64) -> bool {
        let Some(e) = self.queue.peek() else {
            return false;
        };
        if e.at > until {
            return false;
        }
        let at = e.at;
        // Samples see the state before anything at their own instant happens.
        if self.metrics.next_sample() < at {
            self.advance(at - 1);
        }
        let e = self.queue.pop().expect("peeked");
        self.stats.popped += 1;
        self.now = at;
        self.deliver(e);
        true
    }

    fn deliver(&mut self, e: Entry) {
        let to = e.to as usize;
        let node = &mut self.nodes[to];
        if matches!(e.what, Delivery::Timer) && node.wake != e.at {
            return; // superseded by a later reschedule
        }
        let status = node.status;
        match e.what {
            // A seed retry keeps its schedule through a pause (see `retry_seeds`).
            Delivery::SeedRetry { run } => {
                self.stats.processed += 1;
                self.retry_seeds(to, run)
            }
            Delivery::Timer | Delivery::Place { .. } | Delivery::Reach { .. }
                if status != Status::Running => {}
            Delivery::Place { run } => {
                self.stats.processed += 1;
                self.place(to, run)
            }
            what => self.arrive(to, status, what),
        }
    }

    /// Running node `to` handles one input.
    fn input(&mut self, to: NodeId, what: Delivery) {
        let now = self.instant(self.now);
        self.stats.processed += 1;
        let node = &mut self.nodes[to];
        match what {
            Delivery::Timer => {
                node.wake = u64::MAX;
                node.swim.handle_timeout(now);
            }
            Delivery::Reach { target, reach } => {
                self.stats.kernel.reaches_delivered += 1;
                node.swim.handle_reach(now, addr_of(target as usize), reach);
            }
            Delivery::Datagram { from, bytes } => {
                let _ = node
                    .swim
                    .handle_datagram(now, addr_of(from as usize), &bytes);
            }
            Delivery::StreamRequest { from, bytes } => {
                if let Ok(Some(reply)) = node.swim.handle_stream(now, &bytes) {
                    self.metrics.streams += 1;
                    self.metrics.stream_bytes += reply.len() as u64;
                    let reply = self.filter(to, reply, Transport::Stream);
                    self.send(
                        to,
                        from as usize,
                        Delivery::StreamReply { bytes: reply },
                        false,
                    );
                }
            }
            Delivery::StreamReply { bytes } => {
                let _ = node.swim.handle_stream(now, &bytes);
            }
            Delivery::SeedRetry { .. } | Delivery::Place { .. } => {
                unreachable!("handled by deliver")
            }
        }
        self.drain(to);
    }

    /// Moves everything node `id` produced into the network and the metrics, and queues its
    /// next wake-up.
    fn drain(&mut self, id: NodeId) {
        while let Some(t) = self.nodes[id].swim.poll_transmit() {
            let Some(to) = slot_of(t.to).filter(|&s| s < self.nodes.len()) else {
                continue;
            };
            let (what, datagram) = match t.channel {
                Channel::Datagram => {
                    self.metrics.packets += 1;
                    self.metrics.bytes += t.payload.len() as u64;
                    let bytes = self.filter(id, t.payload, Transport::Datagram);
                    let from = id as u32;
                    (Delivery::Datagram { from, bytes }, true)
                }
                Channel::Stream => {
                    self.metrics.streams += 1;
                    self.metrics.stream_bytes += t.payload.len() as u64;
                    let bytes = self.filter(id, t.payload, Transport::Stream);
                    let from = id as u32;
                    (Delivery::StreamRequest { from, bytes }, false)
                }
            };
            self.send(id, to, what, datagram);
        }
        let now = self.now;
        let at = Duration::from_nanos(now);
        let mut changed = false;
        while let Some(event) = self.nodes[id].swim.poll_event() {
            changed = true;
            self.metrics.event(now, id as u32, &event);
            if self.check {
                self.check_event(id, &event);
            }
            if self.record {
                self.nodes[id].events.push(Observed { at, event });
            }
        }
        self.drain_user_events(id);
        if self.check {
            self.check_self(id);
        }
        let swim = &self.nodes[id].swim;
        if changed
            || self
                .tasks
                .as_ref()
                .is_some_and(|t| t.joined_while_waiting(id, swim))
        {
            self.request_placement(id);
        }
        let deadline = self.nodes[id].swim.poll_timeout();
        let wake = (deadline.saturating_duration_since(self.base).as_nanos() as u64).max(now);
        let node = &mut self.nodes[id];
        if wake != node.wake {
            node.wake = wake;
            self.schedule(wake, id, Delivery::Timer);
        }
    }

    /// The core's seed-retry policy, as the runtime follows it: while the node needs its
    /// seeds, join them again and wait the next backoff. A paused node skips the attempt but
    /// keeps the schedule (a stopped process's timer fires late, not never); a crashed,
    /// downed or restarted run's schedule ends.
    fn retry_seeds(&mut self, id: NodeId, run: u64) {
        let node = &mut self.nodes[id];
        if node.swim.local().run != run || matches!(node.status, Status::Crashed | Status::HostDown)
        {
            return;
        }
        if !node.swim.needs_seeds() {
            return;
        }
        let at = self.now + node.retry.next_delay().as_nanos() as u64;
        if node.status == Status::Running {
            let addrs: Vec<SocketAddr> = node.seeds.iter().map(|&s| addr_of(s)).collect();
            let now = self.instant(self.now);
            let _ = self.nodes[id].swim.join(now, &addrs);
            self.drain(id);
        }
        self.schedule(at, id, Delivery::SeedRetry { run });
    }

    /// Task mode: node `id` places a placement delay from now, unless it already will.
    fn request_placement(&mut self, id: NodeId) {
        let Some(at) = self.tasks.as_mut().and_then(|t| t.request(id, self.now)) else {
            return;
        };
        let run = self.nodes[id].swim.local().run;
        self.schedule(at, id, Delivery::Place { run });
    }

    /// Task mode: running node `id` follows its view, if it is still run `run`, and the
    /// ledger starts measuring once the mesh has settled: every view right, every node
    /// placed what it saw, every task held once.
    fn place(&mut self, id: NodeId, run: u64) {
        let Some(tasks) = self.tasks.as_mut() else {
            return;
        };
        if let Some(code) = tasks.place(id, run, self.now, &mut self.nodes[id].swim) {
            self.metrics.action(self.now, code, id as u32);
        }
        if !tasks.ledger.measuring() && tasks.all_placed() && self.metrics.all_agree() {
            tasks.ledger.start_if_settled(self.now);
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, what: Delivery, datagram: bool) {
        match self.net.route(&mut self.rng, from, to, datagram) {
            Fate::Dropped => self.stats.dropped += 1,
            Fate::Once(d) => self.schedule(self.now + d.as_nanos() as u64, to, what),
            Fate::Twice(d1, d2) => {
                self.stats.duplicated += 1;
                let copy = match &what {
                    Delivery::Datagram { from, bytes } => Delivery::Datagram {
                        from: *from,
                        bytes: bytes.clone(),
                    },
                    &Delivery::Reach { target, reach } => Delivery::Reach { target, reach },
                    _ => unreachable!("only datagrams are duplicated"),
                };
                self.schedule(self.now + d1.as_nanos() as u64, to, what);
                self.schedule(self.now + d2.as_nanos() as u64, to, copy);
            }
        }
    }

    fn schedule(&mut self, at: u64, to: NodeId, what: Delivery) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq,
            to: to as u32,
            what,
        });
    }
}
