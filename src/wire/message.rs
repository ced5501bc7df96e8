//! The messages peers exchange. Plain data: the rules that act on them live in `crate::proto`.

use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A member's liveness as one node currently believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Answering probes.
    Alive,
    /// Missed a probe; others may refute or confirm before it is declared dead.
    Suspect,
    /// Declared dead after its suspicion timed out. Owns no work.
    Dead,
    /// Left on purpose. Owns no work, and is not reconnected to.
    Left,
}

impl State {
    /// Whether a member in this state may own work and is probed: alive or suspect.
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }

    /// The lower-case name used in logs, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
            State::Left => "left",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Direct probe: "are you `target`?" The receiver answers with an [`Ack`] only if it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Matches the answer to the probe.
    pub seq: u32,
    /// Name of the member the sender means to reach, so a reused address does not answer for
    /// a member that is gone.
    pub target: String,
}

/// Answer to a [`Ping`] (directly, or forwarded by a relay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The `seq` of the ping being answered.
    pub seq: u32,
}

/// Lifeguard's negative acknowledgement: a relay tells the prober it is alive but could not
/// reach the target, so a missing answer is not blamed on the prober's own network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The `seq` of the ping-req being answered.
    pub seq: u32,
}

/// Indirect probe: "please ping `target` at `addr` for me".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingReq {
    /// Sequence the relay answers with.
    pub seq: u32,
    /// Name of the member to probe.
    pub target: String,
    /// Where to probe it.
    pub addr: SocketAddr,
}

/// A member is alive, with this address and metadata, at this run and incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    /// The member's unique name.
    pub name: String,
    /// Identifies one run of the process; a restart picks a larger one.
    pub run: u64,
    /// Raised by the member itself to refute suspicion or publish new metadata.
    pub incarnation: u32,
    /// Where the member receives gossip.
    pub addr: SocketAddr,
    /// Application metadata, opaque to the protocol.
    pub meta: Bytes,
}

/// `from` suspects `name` at `incarnation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    /// The suspected member.
    pub name: String,
    /// The run being suspected; rumours about another run are ignored.
    pub run: u64,
    /// The incarnation being suspected.
    pub incarnation: u32,
    /// Who raised or confirmed the suspicion (Lifeguard counts distinct accusers).
    pub from: String,
    /// What the accuser's probe learned about the suspect's host, if anything: crash
    /// evidence shortens the suspicion, a live host lengthens it (see [`Reach`]). A trailing
    /// field: peers before it send none, and the codec reads their rumours as `None`.
    pub reach: Option<Reach>,
}

/// What a driver learned about an address beyond the protocol's own answers: the kernel of
/// the host behind it spoke, even if the process did not.
///
/// A process that exits leaves its host's kernel refusing the port; a stopped one keeps its
/// sockets, so its kernel still completes stream handshakes; a host that is gone or cut off
/// answers nothing. The core uses the first as crash evidence and the second as a reason for
/// patience (see `proto::Swim::handle_reach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reach {
    /// The host refused: a TCP reset on connect, or ICMP port unreachable for a datagram.
    /// Nothing listens on the port: the process is gone.
    Refused,
    /// A stream connection completed: the host's kernel is up and the port open, whether or
    /// not the process answers.
    HostUp,
}

/// A relay's word to the prober about the target of its ping-req: what the relay's own
/// driver learned about the target's host (a second vantage point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// The `seq` of the ping-req being answered.
    pub seq: u32,
    /// What the relay learned.
    pub reach: Reach,
}

/// `from` declares `name` dead at `incarnation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dead {
    /// The member declared dead.
    pub name: String,
    /// The run declared dead.
    pub run: u64,
    /// The incarnation declared dead.
    pub incarnation: u32,
    /// Who declared it.
    pub from: String,
}

/// `name` left the mesh on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The member that left.
    pub name: String,
    /// Its run.
    pub run: u64,
    /// The incarnation it left at (raised by one when leaving).
    pub incarnation: u32,
}

/// A membership rumour, piggybacked on probes and gossiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// See [`Alive`].
    Alive(Alive),
    /// See [`Suspect`].
    Suspect(Suspect),
    /// See [`Dead`].
    Dead(Dead),
    /// See [`Left`].
    Left(Left),
}

impl Update {
    /// The member the rumour is about.
    pub fn name(&self) -> &str {
        match self {
            Update::Alive(a) => &a.name,
            Update::Suspect(s) => &s.name,
            Update::Dead(d) => &d.name,
            Update::Left(l) => &l.name,
        }
    }
}

/// One member's full record as a node sees it: what a [`PushPull`] carries, and the same
/// record the protocol core and the public API report (`proto::Member`, `swimring::Member`
/// are this type: one record, one name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Its run.
    pub run: u64,
    /// Its incarnation.
    pub incarnation: u32,
    /// Its state as the sender sees it.
    pub state: State,
    /// Its metadata.
    pub meta: Bytes,
}

/// Full-state exchange over a stream: on join, and periodically to repair what gossip missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPull {
    /// The sender's name (credited with any suspicion its state implies).
    pub from: String,
    /// Whether the sender is joining (for logs and counters).
    pub join: bool,
    /// Whether the receiver should answer with its own state.
    pub reply: bool,
    /// Every member the sender knows, itself included.
    pub members: Vec<Member>,
}

/// The sender's placement epoch: a Lamport clock of ownership changes across the mesh. A
/// receiver keeps the highest epoch it hears, and a node that gains tasks claims them one
/// above it, so a task's next owner holds a higher fencing token than the owner it follows
/// (see `placement::FencingToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    /// The epoch.
    pub epoch: u64,
}

/// Anything that travels in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// See [`Ping`].
    Ping(Ping),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Nack`].
    Nack(Nack),
    /// See [`PingReq`].
    PingReq(PingReq),
    /// See [`Update`].
    Update(Update),
    /// See [`PushPull`].
    PushPull(PushPull),
    /// See [`Epoch`].
    Epoch(Epoch),
    /// See [`Reached`].
    Reached(Reached),
    /// See [`UserEvent`](super::user::UserEvent).
    UserEvent(super::user::UserEvent),
}

impl From<Update> for Message {
    fn from(u: Update) -> Self {
        Message::Update(u)
    }
}
