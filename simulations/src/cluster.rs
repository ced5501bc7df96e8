//! The event loop: nodes, a virtual clock, and packets in flight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use swimring::proto::{Channel, Config, Event, Identity, Member, Swim};
use swimring::wire::State;

use crate::network::Network;

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

enum Status {
    Running,
    Paused,
    Crashed,
}

struct Node {
    swim: Swim,
    status: Status,
    /// The wake-up instant currently queued for this node; older queued ones are stale.
    wake: Instant,
    events: Vec<Observed>,
}

enum Delivery {
    Timer,
    Datagram { from: SocketAddr, bytes: Bytes },
    StreamRequest { from: NodeId, bytes: Bytes },
    StreamReply { bytes: Bytes },
}

struct Pending {
    to: NodeId,
    what: Delivery,
}

/// A simulated mesh on virtual time.
pub struct Cluster {
    base: Instant,
    now: Instant,
    rng: ChaCha8Rng,
    /// The fault model; change it at any time.
    pub net: Network,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, NodeId>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    processed: u64,
}

/// The address simulated node `i` has: unique, never used on a real network.
pub fn addr_of(i: NodeId) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 7946))
}

impl Cluster {
    /// An empty cluster whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Cluster {
        // The one real instant: the epoch virtual time counts from. Nothing reads it again.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        Cluster {
            base,
            now: base,
            rng: ChaCha8Rng::seed_from_u64(seed),
            net: Network::default(),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            next_id: 0,
            processed: 0,
        }
    }

    /// Virtual time since the cluster started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Deliveries and timers processed so far.
    pub fn processed(&self) -> u64 {
        self.processed
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
        let swim = self.boot(id, name, cfg, 1);
        self.by_addr.insert(addr_of(id), id);
        self.nodes.push(Node {
            swim,
            status: Status::Running,
            wake: self.now,
            events: Vec::new(),
        });
        self.drain(id);
        id
    }

    fn boot(&mut self, id: NodeId, name: &str, cfg: Config, run: u64) -> Swim {
        let ident = Identity {
            name: name.to_owned(),
            addr: addr_of(id),
            run,
            meta: Bytes::new(),
        };
        Swim::new(cfg, ident, self.rng.random(), self.now).expect("valid simulation config")
    }

    /// The protocol state of node `id`.
    pub fn node(&self, id: NodeId) -> &Swim {
        &self.nodes[id].swim
    }

    /// Events node `id` has reported.
    pub fn events(&self, id: NodeId) -> &[Observed] {
        &self.nodes[id].events
    }

    /// Whether node `id` is running (neither paused nor crashed).
    pub fn is_running(&self, id: NodeId) -> bool {
        matches!(self.nodes[id].status, Status::Running)
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

    /// Node `id` starts a full-state exchange with each node in `seeds`.
    pub fn join(&mut self, id: NodeId, seeds: &[NodeId]) {
        let addrs: Vec<SocketAddr> = seeds.iter().map(|&s| addr_of(s)).collect();
        let now = self.now;
        self.nodes[id].swim.join(now, &addrs);
        self.drain(id);
    }

    /// Node `id` leaves gracefully.
    pub fn leave(&mut self, id: NodeId) {
        let now = self.now;
        self.nodes[id].swim.leave(now);
        self.drain(id);
    }

    /// Node `id` stops at once: no more packets, no more timers.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes[id].status = Status::Crashed;
    }

    /// Node `id` stalls (like SIGSTOP): packets sent to it meanwhile are lost.
    pub fn pause(&mut self, id: NodeId) {
        self.nodes[id].status = Status::Paused;
    }

    /// A paused node carries on, first running every timer that fell due while it slept.
    pub fn resume(&mut self, id: NodeId) {
        self.nodes[id].status = Status::Running;
        let now = self.now;
        self.nodes[id].swim.handle_timeout(now);
        self.drain(id);
    }

    /// Node `id` restarts under the same name and address as a new run, then joins `seeds`.
    pub fn restart(&mut self, id: NodeId, seeds: &[NodeId]) {
        let name = self.nodes[id].swim.local().name.clone();
        let cfg = self.nodes[id].swim.config().clone();
        let run = self.nodes[id].swim.local().run + 1;
        self.nodes[id].swim = self.boot(id, &name, cfg, run);
        self.nodes[id].status = Status::Running;
        self.drain(id);
        self.join(id, seeds);
    }

    /// Runs until virtual time `d` has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.step_before(until) {}
        self.now = until;
    }

    /// Runs until `done` holds (checked after every event) or `limit` of virtual time has
    /// passed. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if !self.step_before(until) {
                self.now = until;
                return done(self);
            }
        }
    }

    /// Processes the next event if it falls before `until`.
    fn step_before(&mut self, until: Instant) -> bool {
        let Some(&Reverse((at, id))) = self.queue.peek() else {
            return false;
        };
        if at > until {
            return false;
        }
        self.queue.pop();
        self.now = at;
        let p = self
            .pending
            .remove(&id)
            .expect("queued deliveries are pending");
        self.deliver(p);
        true
    }

    fn deliver(&mut self, p: Pending) {
        let now = self.now;
        let to = p.to;
        let node = &mut self.nodes[to];
        if matches!(p.what, Delivery::Timer) && node.wake != now {
            return; // superseded by a later reschedule
        }
        if !matches!(node.status, Status::Running) {
            return;
        }
        self.processed += 1;
        match p.what {
            Delivery::Timer => node.swim.handle_timeout(now),
            Delivery::Datagram { from, bytes } => {
                let _ = node.swim.handle_datagram(now, from, &bytes);
            }
            Delivery::StreamRequest { from, bytes } => {
                if let Ok(Some(reply)) = node.swim.handle_stream(now, &bytes) {
                    self.send(to, from, Delivery::StreamReply { bytes: reply }, false);
                }
            }
            Delivery::StreamReply { bytes } => {
                let _ = node.swim.handle_stream(now, &bytes);
            }
        }
        self.drain(to);
    }

    /// Moves everything node `id` produced into the network and its event log, and queues
    /// its next wake-up.
    fn drain(&mut self, id: NodeId) {
        while let Some(t) = self.nodes[id].swim.poll_transmit() {
            let Some(&to) = self.by_addr.get(&t.to) else {
                continue;
            };
            let what = match t.channel {
                Channel::Datagram => Delivery::Datagram {
                    from: addr_of(id),
                    bytes: t.payload,
                },
                Channel::Stream => Delivery::StreamRequest {
                    from: id,
                    bytes: t.payload,
                },
            };
            let lossy = matches!(what, Delivery::Datagram { .. });
            self.send(id, to, what, lossy);
        }
        let at = self.elapsed();
        let node = &mut self.nodes[id];
        while let Some(event) = node.swim.poll_event() {
            node.events.push(Observed { at, event });
        }
        let wake = node.swim.poll_timeout().max(self.now);
        if wake != node.wake || wake == self.now {
            node.wake = wake;
            self.schedule(wake, id, Delivery::Timer);
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, what: Delivery, lossy: bool) {
        if let Some(delay) = self.net.route(&mut self.rng, from, to, lossy) {
            self.schedule(self.now + delay, to, what);
        }
    }

    fn schedule(&mut self, at: Instant, to: NodeId, what: Delivery) {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push(Reverse((at, id)));
        self.pending.insert(id, Pending { to, what });
    }
}
