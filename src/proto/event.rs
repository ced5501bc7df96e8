//! What the protocol core reports to its driver.

use std::net::SocketAddr;

use bytes::Bytes;

/// A member as this node sees it: the same record a full-state exchange carries.
pub use crate::wire::Member;

/// A change in the membership view.
///
/// For any one member, events come in the order this node applied the changes, and each
/// describes a transition from the state the previous event left it in: `Joined` first, then
/// any of `Suspect` → (`Recovered` | `Dead`), `Updated`, `Restarted`, and finally `Dead` or
/// `Left`; a dead or left member that comes back is `Joined` again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member became alive: first seen, or back from dead or left.
    Joined(Member),
    /// A member missed a probe and is suspected.
    Suspect(Member),
    /// A suspected member refuted the suspicion.
    Recovered(Member),
    /// A member was declared dead.
    Dead(Member),
    /// A member left on purpose.
    Left(Member),
    /// A member published new metadata (or a new address).
    Updated(Member),
    /// A member restarted under the same name: a new run replaced the old one at once.
    Restarted(Member),
    /// Another process claims the name of a live member from a different address, or claims
    /// this node's own name. The claim was ignored. When `claimant` is this node's own
    /// address, this node is the one refused: an earlier run of its name is alive elsewhere.
    NameConflict {
        /// The contested name.
        name: String,
        /// Address of the member this node keeps.
        existing: SocketAddr,
        /// Address of the claimant.
        claimant: SocketAddr,
    },
}

impl Event {
    /// The member the event is about (the kept one, for a name conflict: `None`).
    pub fn member(&self) -> Option<&Member> {
        match self {
            Event::Joined(m)
            | Event::Suspect(m)
            | Event::Recovered(m)
            | Event::Dead(m)
            | Event::Left(m)
            | Event::Updated(m)
            | Event::Restarted(m) => Some(m),
            Event::NameConflict { .. } => None,
        }
    }

    /// A short snake_case name for logs and JSON: `member_joined`, `member_dead`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Joined(_) => "member_joined",
            Event::Suspect(_) => "member_suspect",
            Event::Recovered(_) => "member_recovered",
            Event::Dead(_) => "member_dead",
            Event::Left(_) => "member_left",
            Event::Updated(_) => "member_updated",
            Event::Restarted(_) => "member_restarted",
            Event::NameConflict { .. } => "name_conflict",
        }
    }
}

/// Bytes for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The encoded packet.
    pub payload: Bytes,
    /// How to send it.
    pub channel: Channel,
}

/// The transport a [`Transmit`] wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// One UDP datagram.
    Datagram,
    /// A request over a reliable stream (TCP): connect, send the payload, read at most one
    /// reply payload and pass it to [`Swim::handle_stream`](super::Swim::handle_stream).
    Stream,
}
