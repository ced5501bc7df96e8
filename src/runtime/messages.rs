//! Messages from one member to another (memberlist's `SendBestEffort`, `SendReliable` and
//! `NotifyMsg`), at the runtime level: the protocol core never sees these frames.
//!
//! A best-effort message is a datagram of its own (frame 13), sealed like every datagram and
//! sent from the handle on the node's UDP socket; the run loop tells it from gossip by its
//! first tag and hands it here instead of to the core. A reliable message (frame 14) travels
//! on the forwarding module's pooled connection to its peer and is answered once the peer
//! queued it (or refused it). Both land in one bounded queue the application reads with
//! [`Mesh::messages`]; a full queue drops and counts, so a slow reader never holds up the
//! loop or a connection. See docs/RUNTIME.md, *Messages*.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::driver::Shared;
use super::forward::{self, Exchange};
use super::inbox::{Inbox, Offered, Slot};
use super::secure::Sealer;
use super::{Mesh, clock};
use crate::wire::State;
use crate::wire::codec::{Transport, decode_message, encode_message};
use crate::wire::forward::{ForwardFrame, Outcome};
use crate::wire::user::{MessageDatagram, ReliableMessage};

/// Default messages waiting for the application before more are dropped.
pub const DEFAULT_MESSAGE_QUEUE: usize = 1024;
/// Default largest reliable message body, in bytes.
pub const DEFAULT_MAX_RELIABLE_MESSAGE: usize = 1 << 20;

/// Why [`Mesh::send`] or [`Mesh::send_reliable`] did not deliver a message.
///
/// Only [`MessageError::Timeout`] and [`MessageError::Lost`] leave it open whether the peer
/// queued the message; after every other error it did not.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// No member has this name in this node's view: nothing was sent.
    #[error("no member named {name:?} in this node's view")]
    UnknownMember {
        /// The name asked for.
        name: String,
    },
    /// The member is dead or has left in this node's view: nothing was sent.
    #[error("{name} is {state}: messages go to live members only")]
    NotLive {
        /// The member.
        name: String,
        /// Its state in this node's view.
        state: State,
    },
    /// The body exceeds the limit: this node's ([`Mesh::max_message_len`] for a best-effort
    /// message, [`MeshBuilder::max_reliable_message`](super::MeshBuilder::max_reliable_message)
    /// for a reliable one), before anything was sent, or the peer's, which refused it.
    #[error("message of {len} bytes exceeds {limit}")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The message could not be sent to the member: the socket refused the datagram, or the
    /// connection could not be made or closed before the message was written.
    #[error("cannot reach {member}: {reason}")]
    Unreachable {
        /// The member.
        member: String,
        /// Why.
        reason: String,
    },
    /// The member's application reads no messages ([`Mesh::messages`]): it dropped this one.
    #[error("{member} has no message subscriber: the message was dropped")]
    NoSubscriber {
        /// The member.
        member: String,
    },
    /// The member's message queue was full: it dropped this one.
    #[error("{member}'s message queue is full: the message was dropped")]
    Busy {
        /// The member.
        member: String,
    },
    /// No answer within the stream timeout: the member may or may not have queued it.
    #[error("no answer from {member} within {after:?}: it may or may not have the message")]
    Timeout {
        /// The member.
        member: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection broke after the message was written: the member may or may not have
    /// queued it.
    #[error("connection to {member} lost after the message was sent ({reason})")]
    Lost {
        /// The member.
        member: String,
        /// What ended the connection.
        reason: String,
    },
    /// The mesh has shut down.
    #[error("the mesh has shut down")]
    Shutdown,
}

impl MessageError {
    /// The error for a reliable message `member` answered with anything but `Accepted`.
    fn refused(member: &str, outcome: Outcome) -> MessageError {
        let member = member.to_owned();
        match outcome {
            Outcome::NoHandler => MessageError::NoSubscriber { member },
            Outcome::Busy => MessageError::Busy { member },
            Outcome::TooLarge { len, limit } => MessageError::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            other => MessageError::Lost {
                member,
                reason: format!("the peer answered {other:?}, not an acceptance"),
            },
        }
    }
}

/// A message another member (or this one) sent to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserMessage {
    /// The sender's member name as its frame carries it. With keys, the frame was sealed with
    /// a cluster key, so some holder of that key sent it; the seal does not tell members
    /// apart, so any holder could have written any name here. Without keys it proves nothing.
    pub from: String,
    /// The application's bytes.
    pub bytes: Bytes,
    /// Whether it came by [`Mesh::send_reliable`] (the sender was told it arrived) rather than
    /// [`Mesh::send`].
    pub reliable: bool,
}

/// Messages sent to this node, in arrival order: made by [`Mesh::messages`]. Also a
/// [`Stream`](futures_core::Stream) of the same items.
pub type Messages = Inbox<UserMessage>;

/// A node's message settings (see [`MeshBuilder::message_queue`](super::MeshBuilder::message_queue)
/// and [`MeshBuilder::max_reliable_message`](super::MeshBuilder::max_reliable_message)).
#[derive(Debug, Clone)]
pub(crate) struct MessageConfig {
    /// Largest best-effort body: what fits in `max_datagram` with this node's name, the
    /// label and (with keys) the seal.
    pub max_datagram: usize,
    pub max_reliable: usize,
    pub queue: usize,
    /// Bound on one reliable send: the stream timeout.
    pub timeout: Duration,
}

/// Message counters, read into [`MeshStats`](super::MeshStats).
#[derive(Default)]
pub(crate) struct MessageCounters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub malformed: AtomicU64,
}

impl MessageCounters {
    /// `(sent, received, dropped, malformed)` as they are now.
    pub(crate) fn load(&self) -> [u64; 4] {
        [&self.sent, &self.received, &self.dropped, &self.malformed]
            .map(|c| c.load(Ordering::Relaxed))
    }
}

/// The receiving side, shared by the loop (datagrams), the forward connections (reliable
/// messages) and the handles (the subscription).
pub(crate) struct Messaging {
    pub config: MessageConfig,
    pub counters: MessageCounters,
    /// The application's queue.
    queue: Slot<UserMessage>,
}

impl Messaging {
    pub(crate) fn new(config: MessageConfig) -> Messaging {
        Messaging {
            queue: Slot::new(config.queue),
            config,
            counters: MessageCounters::default(),
        }
    }

    /// Ends the subscription: its reader learns the mesh is gone.
    pub(crate) fn close(&self) {
        self.queue.close();
    }

    /// Takes an opened datagram whose first frame is a message; one that does not decode is
    /// counted and dropped. Never waits.
    pub(crate) fn datagram(&self, label: &str, plain: &[u8]) {
        match decode_message(plain, label) {
            Ok(m) => {
                self.deliver(m.from, m.body, false);
            }
            Err(e) => {
                forward::bump(&self.counters.malformed);
                tracing::debug!(error = %e, "malformed message datagram dropped");
            }
        }
    }

    /// Queues a reliable message, or says why not: the answer its sender gets.
    pub(crate) fn reliable(&self, m: ReliableMessage) -> Outcome {
        let limit = self.config.max_reliable;
        if m.body.len() > limit {
            forward::bump(&self.counters.dropped);
            return Outcome::TooLarge {
                len: m.body.len() as u64,
                limit: limit as u64,
            };
        }
        self.deliver(m.from, m.body, true)
    }

    /// Hands a message to the application's queue without waiting: with no subscriber, or a
    /// full queue, it is dropped and counted.
    fn deliver(&self, from: String, bytes: Bytes, reliable: bool) -> Outcome {
        let msg = UserMessage {
            from,
            bytes,
            reliable,
        };
        let outcome = match self.queue.offer(msg) {
            Offered::Accepted => Outcome::Accepted,
            Offered::Full => Outcome::Busy,
            Offered::NoSubscriber => Outcome::NoHandler,
        };
        let counter = match outcome {
            Outcome::Accepted => &self.counters.received,
            _ => &self.counters.dropped,
        };
        forward::bump(counter);
        outcome
    }
}

/// The sending side, held by the handles: this node's name, a weak hold on its UDP socket
/// (the loop owns it, so a shutdown still closes it) and the sealer for best-effort messages.
pub(crate) struct Outbox {
    name: String,
    udp: Weak<UdpSocket>,
    /// Its own sender instance, so handles seal without going through the loop; receivers
    /// keep a replay window for it like for any other sender.
    sealer: Mutex<Sealer>,
}

impl Outbox {
    pub(crate) fn new(name: String, udp: &Arc<UdpSocket>) -> Outbox {
        Outbox {
            name,
            udp: Arc::downgrade(udp),
            sealer: Mutex::new(Sealer::new()),
        }
    }
}

impl Mesh {
    /// Sends `bytes` to the member named `member` in one datagram, sealed like every packet
    /// when the mesh has keys. Best effort: it may be lost, and nothing says whether it
    /// arrived. At most [`Mesh::max_message_len`] bytes; a larger body is refused with
    /// [`MessageError::TooLarge`] before anything is sent. Waits only for room in the
    /// socket's send buffer.
    pub async fn send(&self, member: &str, bytes: impl Into<Bytes>) -> Result<(), MessageError> {
        let body = bytes.into();
        let limit = self.max_message_len();
        if body.len() > limit {
            let len = body.len();
            return Err(MessageError::TooLarge { len, limit });
        }
        let to = self.address_of(member)?;
        let (outbox, shared) = (&self.inner.outbox, &self.inner.shared);
        let udp = outbox.udp.upgrade().ok_or(MessageError::Shutdown)?;
        let msg = MessageDatagram {
            from: outbox.name.clone(),
            body,
        };
        let plain = encode_message(&shared.label, &msg);
        let sealed = {
            let ring = shared.keyring();
            let mut sealer = outbox.sealer.lock().unwrap_or_else(|e| e.into_inner());
            sealer.seal(&ring, &shared.label, Transport::Datagram, plain)
        };
        udp.send_to(&sealed, to)
            .await
            .map_err(|e| MessageError::Unreachable {
                member: member.to_owned(),
                reason: e.to_string(),
            })?;
        forward::bump(&shared.messages.counters.sent);
        Ok(())
    }

    /// Sends `bytes` to the member named `member` over TCP (sealed with the cluster key, on
    /// the persistent connection forwarding uses), and returns once that member's runtime has
    /// queued it for its application, or with the error that kept it out. Bounded by the
    /// stream timeout and by [`MeshBuilder::max_reliable_message`](super::MeshBuilder::max_reliable_message).
    pub async fn send_reliable(
        &self,
        member: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<(), MessageError> {
        let body = bytes.into();
        let messages = &self.inner.shared.messages;
        let limit = messages.config.max_reliable;
        if body.len() > limit {
            let len = body.len();
            return Err(MessageError::TooLarge { len, limit });
        }
        let to = self.address_of(member)?;
        let client = &self.inner.forward;
        if client.is_closed() {
            return Err(MessageError::Shutdown);
        }
        let after = messages.config.timeout;
        let deadline = Instant::from_std(clock::now()) + after;
        let from = &self.inner.outbox.name;
        let frame = |id| {
            let (from, body) = (from.clone(), body.clone());
            ForwardFrame::Message(ReliableMessage { id, from, body })
        };
        let member = member.to_owned();
        match client
            .exchange(to, frame, &messages.counters.sent, deadline)
            .await
        {
            Exchange::Answer(Outcome::Accepted) => Ok(()),
            Exchange::Answer(refusal) => Err(MessageError::refused(&member, refusal)),
            Exchange::NotSent(reason) => Err(MessageError::Unreachable { member, reason }),
            Exchange::Lost(reason) => Err(MessageError::Lost { member, reason }),
            Exchange::Timeout => Err(MessageError::Timeout { member, after }),
        }
    }

    /// Subscribes to the messages sent to this node, best-effort and reliable alike, replacing
    /// (and ending) any earlier subscription. At most
    /// [`MeshBuilder::message_queue`](super::MeshBuilder::message_queue) wait; past that, and
    /// while nobody subscribes, arriving messages are dropped and counted in
    /// `messages_dropped` (a reliable sender is told), so a slow reader never slows the mesh.
    pub fn messages(&self) -> Messages {
        self.inner.shared.messages.queue.subscribe()
    }

    /// The largest body [`Mesh::send`] takes: what fits in one datagram of `max_datagram`
    /// bytes with this node's name, the cluster label and, with keys, the seal.
    pub fn max_message_len(&self) -> usize {
        self.inner.shared.messages.config.max_datagram
    }

    /// Where a message to `member` goes: its address, if it is alive or suspect.
    fn address_of(&self, member: &str) -> Result<SocketAddr, MessageError> {
        let m = self
            .member(member)
            .ok_or_else(|| MessageError::UnknownMember {
                name: member.to_owned(),
            })?;
        if !m.state.is_live() {
            let (name, state) = (m.name, m.state);
            return Err(MessageError::NotLive { name, state });
        }
        Ok(m.addr)
    }
}

/// The loop's entry point, kept here with the rest of the receiving side.
impl Shared {
    /// Whether an opened datagram is a message, and if so takes it (see [`Messaging::datagram`]).
    pub(crate) fn take_message(&self, plain: &[u8]) -> bool {
        let is = crate::wire::codec::is_message(plain);
        if is {
            self.messages.datagram(&self.label, plain);
        }
        is
    }
}
