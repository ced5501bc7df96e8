//! Application messages between two members (memberlist's `SendBestEffort`,
//! `SendReliable` and `NotifyMsg`): plain data carried in frames 13 and 14 (see
//! [`codec`](super::codec)). The rules that act on them live in the runtime
//! (`runtime::messages`); the protocol core skips these tags like any frame it does not know.

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
