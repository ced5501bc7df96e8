//! Driving the protocol core by hand: two nodes, an in-memory network, and virtual time.
//!
//! `swimring::proto::Swim` does no I/O and reads no clock. Whoever drives it (the tokio
//! runtime, the simulator, or this example) follows one loop, stated in the crate docs:
//!
//! 1. feed one input: a datagram, a stream payload, a timeout, or an operation;
//! 2. drain `poll_transmit` (and deliver what it returns) and `poll_event`;
//! 3. wait until the earliest `poll_timeout`, and call `handle_timeout` with that time.
//!
//! Here two nodes join, see each other alive, then one "crashes" (the network stops carrying
//! its packets) and the other suspects it and declares it dead, all in virtual time, in a
//! few milliseconds of real time. Run with `cargo run --example sans_io`.
#![allow(clippy::disallowed_methods)] // one real instant, as the epoch of virtual time

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use swimring::proto::{Channel, Config, Event, Identity, Swim, Transmit};

/// One packet in flight: who sent it, and what.
struct InFlight {
    from: usize,
    transmit: Transmit,
}

/// The two nodes, the packets between them, and the virtual clock.
struct World {
    nodes: Vec<Swim>,
    wire: VecDeque<InFlight>,
    now: Instant,
    epoch: Instant,
    /// A crashed node neither sends nor receives.
    crashed: Option<usize>,
}

fn main() {
    let epoch = Instant::now();
    let addrs: [SocketAddr; 2] = [
        "127.0.0.1:7001".parse().unwrap(),
        "127.0.0.1:7002".parse().unwrap(),
    ];
    let nodes = ["a", "b"]
        .iter()
        .zip(addrs)
        .enumerate()
        .map(|(i, (name, addr))| {
            let id = Identity {
                name: name.to_string(),
                addr,
                run: 1,
                meta: Bytes::new(),
            };
            // The seed drives every random choice: the same seed, the same run.
            Swim::new(Config::lan(), id, i as u64, epoch).expect("a valid configuration")
        })
        .collect();
    let mut world = World {
        nodes,
        wire: VecDeque::new(),
        now: epoch,
        epoch,
        crashed: None,
    };

    // An operation is an input too: b joins through a, with a full-state exchange.
    world.nodes[1]
        .join(epoch, &[addrs[0]])
        .expect("b has not left");
    world.drain(1);
    world.run_until(|w| w.sees(0, "b", "alive") && w.sees(1, "a", "alive"));
    world.say("a and b see each other alive");

    world.crashed = Some(1);
    world.say("b crashes: its packets are lost from now on");
    world.run_until(|w| w.sees(0, "b", "dead"));
    world.say("a has declared b dead");
}

impl World {
    /// Whether node `observer` holds `name` in `state`.
    fn sees(&self, observer: usize, name: &str, state: &str) -> bool {
        self.nodes[observer]
            .member(name)
            .is_some_and(|m| m.state.as_str() == state)
    }

    fn say(&self, what: &str) {
        let t = (self.now - self.epoch).as_secs_f64();
        println!("[{t:7.3}s virtual] {what}");
    }

    /// Step 2 of the loop for node `i`: queue what it wants to send, print what happened.
    fn drain(&mut self, i: usize) {
        while let Some(transmit) = self.nodes[i].poll_transmit() {
            self.wire.push_back(InFlight { from: i, transmit });
        }
        while let Some(event) = self.nodes[i].poll_event() {
            self.report(i, &event);
        }
    }

    fn report(&self, i: usize, event: &Event) {
        if let Some(m) = event.member() {
            let me = &self.nodes[i].local().name;
            self.say(&format!("  {me}: {} {}", event.kind(), m.name));
        }
    }

    /// Delivers every packet in flight (each may cause more), then advances virtual time to
    /// the earliest timer and fires it; repeats until `done` holds.
    fn run_until(&mut self, done: impl Fn(&World) -> bool) {
        // A bound, so that a mistake here ends instead of spinning: ten simulated minutes.
        let limit = self.now + Duration::from_secs(600);
        while !done(self) {
            while let Some(p) = self.wire.pop_front() {
                self.deliver(p);
            }
            let (i, at) = (0..self.nodes.len())
                .filter(|&i| self.crashed != Some(i))
                .map(|i| (i, self.nodes[i].poll_timeout()))
                .min_by_key(|&(_, at)| at)
                .expect("a node is running");
            assert!(at < limit, "the example did not converge");
            self.now = self.now.max(at);
            self.nodes[i].handle_timeout(self.now);
            self.drain(i);
        }
    }

    /// Step 1 of the loop for the receiver: a datagram is handed over as it is; a stream
    /// request may return a reply, which goes back to the sender as a stream payload.
    fn deliver(&mut self, p: InFlight) {
        let Some(to) = self
            .nodes
            .iter()
            .position(|n| n.local().addr == p.transmit.to)
        else {
            return;
        };
        if self.crashed == Some(to) || self.crashed == Some(p.from) {
            return; // lost: a crashed process neither receives nor sends
        }
        let from_addr = self.nodes[p.from].local().addr;
        match p.transmit.channel {
            Channel::Datagram => {
                // A malformed packet is refused whole, changing nothing: not the case here.
                let _ = self.nodes[to].handle_datagram(self.now, from_addr, &p.transmit.payload);
            }
            Channel::Stream => {
                if let Ok(Some(reply)) = self.nodes[to].handle_stream(self.now, &p.transmit.payload)
                {
                    let _ = self.nodes[p.from].handle_stream(self.now, &reply);
                    self.drain(p.from);
                }
            }
        }
        self.drain(to);
    }
}
