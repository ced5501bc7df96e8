//! Application requests forwarded to a key's owner, and their replies: plain data carried in
//! frames 11 and 12 of an ordinary envelope (see [`codec`](super::codec)); reliable messages
//! (frame 14) share the same connections and replies. The rules that act on them live in the
//! runtime (`runtime::forward`), not in the protocol core, which skips these tags like any
//! frame it does not know.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::user::ReliableMessage;

/// Longest key a forwarded request may carry, in bytes. Keys name work (task keys, cache
/// keys); a bound this generous refuses only garbage, before anything is hashed.
pub const MAX_FORWARD_KEY: usize = 4096;

/// A request for the owner of `key` (frame tag 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// Chosen by the sender, unique among its requests: the reply carries it back, so many
    /// requests share one connection.
    pub id: u64,
    /// Nodes this request visited before this one. A receiver refuses it once this reaches
    /// its hop limit, so a request bounced between nodes that disagree on the owner stops.
    pub hops: u8,
    /// The key whose owner should serve it.
    pub key: Bytes,
    /// The application's request, opaque to swimring.
    pub body: Bytes,
}

/// The answer to the request with the same `id` (frame tag 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardReply {
    /// The [`ForwardRequest::id`] answered.
    pub id: u64,
    /// What became of it.
    pub outcome: Outcome,
}

/// What a node did with a forwarded request. Only [`Outcome::Reply`] and
/// [`Outcome::Dropped`] mean the application's handler saw it; every other outcome is a
/// refusal given before any handler did, so the sender may safely try elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The handler's reply.
    Reply(Bytes),
    /// The receiver does not own the key in its view; `owner` is who does (none while no
    /// member may own work there, e.g. before its join).
    NotOwner {
        /// The owner in the receiver's view.
        owner: Option<String>,
    },
    /// The receiver owns the key but no handler is registered.
    NoHandler,
    /// The handler's queue is full.
    Busy,
    /// The request had already visited `limit` nodes.
    HopLimit {
        /// The receiver's hop limit.
        limit: u8,
    },
    /// The request's body exceeds the receiver's limit.
    TooLarge {
        /// Bytes in the body.
        len: u64,
        /// The receiver's limit.
        limit: u64,
    },
    /// The handler's reply exceeded the limit and was not sent (the handler did run).
    ReplyTooLarge {
        /// Bytes in the reply.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The handler took the request and dropped it without replying (it may have acted).
    Dropped,
    /// A [`ReliableMessage`] was queued for the receiver's application. Last, so the
    /// variants before it keep their encoding.
    Accepted,
}

/// A forward frame, as [`codec::decode_forward`](super::codec::decode_forward) returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardFrame {
    /// See [`ForwardRequest`].
    Request(ForwardRequest),
    /// See [`ForwardReply`].
    Reply(ForwardReply),
    /// See [`ReliableMessage`]: answered like a request, never handed to a forward handler.
    Message(ReliableMessage),
}
