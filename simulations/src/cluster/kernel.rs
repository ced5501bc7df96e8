//! What each simulated node's kernel says besides the protocol's own packets.
//!
//! Besides the protocol's own packets, the engine plays what each node's kernel would say:
//!
//! - A **crashed process** ([`Cluster::crash`](super::Cluster::crash)) on a live host refuses: a datagram that
//!   reaches it draws an ICMP port unreachable, a stream request a TCP reset, and either
//!   reaches the sender one network delay later as a [`Reach::Refused`] (handed to the core
//!   as [`Swim::handle_reach`](swimring::proto::Swim::handle_reach)) if the path back is connected. The ICMP message is a
//!   datagram: loss can drop it (or duplication copy it); the reset is not lost.
//! - A **host that is down** ([`Cluster::host_down`](super::Cluster::host_down)) answers nothing, nor does one cut off
//!   by a partition (its packets never arrive).
//! - A **paused process** ([`Cluster::pause`](super::Cluster::pause)) keeps its sockets: datagrams to it wait in a
//!   bounded receive buffer ([`RECV_BUFFER_DATAGRAMS`], [`RECV_BUFFER_BYTES`]; more are
//!   dropped and counted) and are handed over in arrival order when it resumes. A stream
//!   request to it completes its handshake ([`Reach::HostUp`] at the sender one network
//!   delay later) and waits in the accept backlog ([`ACCEPT_BACKLOG`]); on resume it is
//!   served unless it waited longer than the requester's stream timeout (the runtime's
//!   default, ten probe timeouts), in which case the requester is taken to have given up
//!   and it is dropped. A stream reply to it waits too, unbounded (TCP flow control).
//! - A stream request to a running node reports [`Reach::HostUp`] to the requester too (a
//!   completed handshake): one extra event per stream.
//! - Only a running process hears a report: one that reaches a paused, crashed or downed
//!   node is dropped (the probe it was about is long over when a paused one resumes).
//!
//! [`KernelStats`] counts all of it.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use swimring::proto::Config;
use swimring::wire::Reach;

use super::{Cluster, Delivery, NodeId, Status};

/// Datagrams a paused node's receive buffer holds; more are dropped.
pub const RECV_BUFFER_DATAGRAMS: usize = 256;
/// Bytes of datagrams a paused node's receive buffer holds; more are dropped.
pub const RECV_BUFFER_BYTES: usize = 200 << 10;
/// Stream requests a paused node's accept backlog holds; more are dropped.
pub const ACCEPT_BACKLOG: usize = 128;

/// How long a requester waits for a stream exchange before giving up: the runtime's default
/// (`MeshBuilder::stream_timeout`), ten probe timeouts.
fn stream_timeout(cfg: &Config) -> Duration {
    cfg.probe_timeout.saturating_mul(10)
}

/// What a paused node's kernel holds for it: (arrival ns, input) in order, and how many
/// datagrams, datagram bytes and stream requests that is.
#[derive(Default)]
pub(super) struct Inbox {
    pub queue: VecDeque<(u64, Delivery)>,
    datagrams: usize,
    bytes: usize,
    streams: usize,
}

impl Inbox {
    pub fn clear(&mut self) {
        *self = Inbox::default();
    }
}

/// Counters of the kernel model (this module); `summary.json` reports them
/// under `totals.kernel`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KernelStats {
    /// Refusals ([`Reach::Refused`]) sent back by crashed processes' hosts (ICMP port
    /// unreachable, TCP reset), whether or not the network then delivered them.
    pub refusals: u64,
    /// Completed stream handshakes ([`Reach::HostUp`]) sent back.
    pub host_ups: u64,
    /// Reports ([`Reach`]) handed to running nodes
    /// ([`Swim::handle_reach`](swimring::proto::Swim::handle_reach)).
    pub reaches_delivered: u64,
    /// Datagrams, stream requests and stream replies queued for a paused node.
    pub queued_while_paused: u64,
    /// Queued inputs handed over when their node resumed.
    pub delivered_after_pause: u64,
    /// Datagrams and stream requests to a paused node dropped because its receive buffer or
    /// accept backlog was full.
    pub dropped_buffer_full: u64,
    /// Queued stream requests dropped on resume: the requester's stream timeout had passed.
    pub dropped_stale_streams: u64,
}

impl Cluster {
    /// A packet (or a timer, or a report) reaches node `to`'s host, whose process is in
    /// `status`: the kernel model (this module).
    pub(super) fn arrive(&mut self, to: NodeId, status: Status, what: Delivery) {
        match (status, &what) {
            (Status::Running, Delivery::StreamRequest { from, .. }) => {
                let from = *from as usize;
                self.answer(to, from, Reach::HostUp, false);
            }
            (Status::Running, _) => {}
            // ICMP port unreachable: a datagram itself.
            (Status::Crashed, Delivery::Datagram { from, .. }) => {
                let from = *from as usize;
                return self.answer(to, from, Reach::Refused, true);
            }
            // A TCP reset.
            (Status::Crashed, Delivery::StreamRequest { from, .. }) => {
                let from = *from as usize;
                return self.answer(to, from, Reach::Refused, false);
            }
            (Status::Paused, Delivery::StreamRequest { from, .. }) => {
                let from = *from as usize;
                self.answer(to, from, Reach::HostUp, false);
                return self.enqueue(to, what);
            }
            (Status::Paused, Delivery::Datagram { .. } | Delivery::StreamReply { .. }) => {
                return self.enqueue(to, what);
            }
            // A reply to a stopped requester, anything to a host that is down.
            _ => return,
        }
        self.input(to, what);
    }

    /// Node `to`'s kernel tells `from` about `to`'s host, one network delay back, if the
    /// path back is connected; as a datagram (ICMP, lossy) or on the stream's connection.
    fn answer(&mut self, to: NodeId, from: NodeId, reach: Reach, datagram: bool) {
        match reach {
            Reach::Refused => self.stats.kernel.refusals += 1,
            Reach::HostUp => self.stats.kernel.host_ups += 1,
        }
        let target = to as u32;
        self.send(to, from, Delivery::Reach { target, reach }, datagram);
    }

    /// Queues an input for paused node `to`, unless its buffer is full.
    fn enqueue(&mut self, to: NodeId, what: Delivery) {
        let node = &mut self.nodes[to];
        let fits = match &what {
            Delivery::Datagram { bytes, .. } => {
                let fits = node.inbox.datagrams < RECV_BUFFER_DATAGRAMS
                    && node.inbox.bytes + bytes.len() <= RECV_BUFFER_BYTES;
                if fits {
                    node.inbox.datagrams += 1;
                    node.inbox.bytes += bytes.len();
                }
                fits
            }
            Delivery::StreamRequest { .. } => {
                let fits = node.inbox.streams < ACCEPT_BACKLOG;
                node.inbox.streams += usize::from(fits);
                fits
            }
            // An open connection's data: TCP flow control holds it, whatever its size.
            _ => true,
        };
        if fits {
            node.inbox.queue.push_back((self.now, what));
            self.stats.kernel.queued_while_paused += 1;
        } else {
            self.stats.kernel.dropped_buffer_full += 1;
        }
    }

    /// Hands a resumed node what its kernel held for it, in arrival order. A stream request
    /// older than its requester's stream timeout is dropped (the requester gave up).
    pub(super) fn flush_inbox(&mut self, id: NodeId) {
        let inbox = std::mem::take(&mut self.nodes[id].inbox);
        for (at, what) in inbox.queue {
            if let Delivery::StreamRequest { from, .. } = &what {
                let limit = stream_timeout(self.nodes[*from as usize].swim.config());
                if self.now - at > limit.as_nanos() as u64 {
                    self.stats.kernel.dropped_stale_streams += 1;
                    continue;
                }
            }
            self.stats.kernel.delivered_after_pause += 1;
            self.input(id, what);
        }
    }
}
