//! The application's own data: messages between two members (memberlist's
//! `SendBestEffort`, `SendReliable` and `NotifyMsg`), plain data carried in frames 13 and 14
//! (see [`codec`](super::codec)), whose rules live in the runtime (`runtime::messages`) and
//! which the protocol core skips like any frame it does not know; and user events (serf's),
//! frame 16, which the core disseminates to every member (`proto::Swim::broadcast`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A best-effort message: the only frame of its own datagram (frame tag 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDatagram {
    /// The sender's member name, as it claims it. Sealed with the packet when the mesh has
    /// keys, so it proves the sender holds a cluster key, not that it is that member.
    pub from: String,
    /// The application's bytes, opaque to swimring.
    pub body: Bytes,
}

/// A reliable message on a forward connection (frame tag 14); the receiver answers with a
/// [`ForwardReply`](super::forward::ForwardReply) of the same `id`, whose outcome is
/// [`Outcome::Accepted`](super::forward::Outcome::Accepted) once the message is queued for
/// its application, or the refusal that kept it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliableMessage {
    /// Chosen by the sender, unique among its requests on the connection.
    pub id: u64,
    /// The sender's member name, as it claims it (see [`MessageDatagram::from`]).
    pub from: String,
    /// The application's bytes, opaque to swimring.
    pub body: Bytes,
}

/// A user event (serf's `UserEvent`): a named payload one member broadcasts to every member,
/// disseminated by piggybacking like membership rumours (frame tag 16). Each member delivers
/// it once: `(from, run, seq)` identifies it, and a restarted member's new run starts its
/// sequence again without being mistaken for the old one's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    /// The member that broadcast it, as the frame names it (sealed with the packet when the
    /// mesh has keys: it proves a key holder sent it, not which member).
    pub from: String,
    /// The run of the member that broadcast it.
    pub run: u64,
    /// Its sequence number within that run: 1 for the run's first event, then one more each.
    pub seq: u64,
    /// The event's name, 1 to [`MAX_USER_EVENT_NAME`] bytes, chosen by the application.
    pub name: String,
    /// The application's bytes, opaque to swimring.
    pub payload: Bytes,
}

/// Longest user event name, in bytes.
pub const MAX_USER_EVENT_NAME: usize = 64;
