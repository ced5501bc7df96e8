//! Forwarding an application's request to the owner of its key (Ringpop's
//! `HandleOrForward`), at the runtime level: the protocol core never sees these frames.
//!
//! [`Mesh::forward`](super::Mesh::forward) looks the key's owner up on this node's ring. If
//! this node owns it, the request goes straight to the handler the application registered
//! with [`Mesh::serve_forwarded`](super::Mesh::serve_forwarded); otherwise it travels over
//! TCP to the owner, sealed like every stream payload, on one persistent connection per peer
//! that carries many requests at once (each with an id its reply names). The owner serves it
//! only if it owns the key in its own view; if not, it refuses with the owner it sees, and the
//! caller follows that name. See docs/RUNTIME.md, *Forwarding*, for the exact guarantees.

mod client;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::io::BufWriter;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

pub(crate) use client::{Client, Exchange};
pub(crate) use server::serve;

use super::driver::Shared;
use super::net;
use super::secure::Sealer;
use crate::wire::codec::{Transport, decode_forward};
use crate::wire::forward::{ForwardFrame, Outcome};
use crate::wire::seal::Origin;

/// Default retries on the next owners when an owner cannot be reached or refuses.
pub const DEFAULT_FORWARD_RETRIES: u32 = 2;
/// Default most nodes one forwarded request may visit.
pub const DEFAULT_FORWARD_HOP_LIMIT: u8 = 4;
/// Default largest request or reply body, in bytes.
pub const DEFAULT_FORWARD_MAX_PAYLOAD: usize = 1 << 20;
/// Default requests waiting for the handler before more are refused as busy.
pub const DEFAULT_FORWARD_QUEUE: usize = 1024;
/// Inbound forward connections served at once (each is persistent, one per calling peer).
const MAX_FORWARD_CONNS: usize = 128;
/// Requests one connection may have in flight; past it, the reader waits (TCP pushes back on
/// the caller) instead of queueing without bound.
const MAX_IN_FLIGHT: usize = 1024;

/// The forwarding settings of a node (see the `forward_*` options of
/// [`MeshBuilder`](super::MeshBuilder)).
#[derive(Debug, Clone)]
pub(crate) struct ForwardConfig {
    pub timeout: Duration,
    pub retries: u32,
    pub hop_limit: u8,
    pub max_payload: usize,
    pub queue: usize,
    /// Largest forward frame read or decoded: a stream payload's limit (`max_stream`), as on
    /// every stream. The payload limit is checked after decoding, so an oversized body gets a
    /// clear refusal rather than a closed connection.
    pub max_frame: usize,
}

/// Why [`Mesh::forward`](super::Mesh::forward) returned no reply. Each variant says whether
/// the owner's handler may have run the request ([`ForwardError::may_have_run`]): only a
/// timeout, a lost connection, a dropped request or an oversized reply leave that open.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardError {
    /// No member may own work in this node's view (e.g. before its join): nothing was sent.
    #[error("no member owns the key in this node's view")]
    NoOwner,
    /// The key is longer than [`MAX_FORWARD_KEY`](crate::wire::forward::MAX_FORWARD_KEY): nothing was sent.
    #[error("key of {len} bytes exceeds {limit}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The body exceeds the forward payload limit (this node's, or the owner's, which refused
    /// it before its handler saw it).
    #[error("request of {len} bytes exceeds forward_max_payload ({limit})")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The last node tried does not own the key in its view, and no retry was left; `owner` is
    /// whom it named. Ownership is moving: try again once the views agree.
    #[error("{node} does not own the key (it names {owner:?})")]
    NotOwner {
        /// The node that refused.
        node: String,
        /// The owner in its view.
        owner: Option<String>,
    },
    /// The last node tried could not be reached, and no retry was left: nothing was sent to it.
    #[error("cannot reach {node}: {reason}")]
    Unreachable {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The owner has no handler registered ([`Mesh::serve_forwarded`](super::Mesh::serve_forwarded)).
    #[error("{node} owns the key but serves no forwarded requests")]
    NoHandler {
        /// The owner.
        node: String,
    },
    /// The owner's handler queue was full; the request was not queued.
    #[error("{node} is busy: its forward queue is full")]
    Busy {
        /// The owner.
        node: String,
    },
    /// The request visited `limit` nodes without reaching one that serves it (the nodes
    /// disagree on the owner, or keep pointing at each other).
    #[error("the request visited {limit} nodes without reaching its owner")]
    HopLimit {
        /// The hop limit.
        limit: u8,
    },
    /// The handler ran, but its reply exceeded the payload limit and was not sent.
    #[error("{node}'s reply of {len} bytes exceeds {limit}")]
    ReplyTooLarge {
        /// The owner.
        node: String,
        /// The reply's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The handler took the request and dropped it without replying: it may have acted.
    #[error("{node}'s handler dropped the request without replying")]
    Dropped {
        /// The owner.
        node: String,
    },
    /// No reply within `forward_timeout`: the owner may or may not have run the request.
    #[error("no reply from {node} within {after:?}: it may or may not have run the request")]
    Timeout {
        /// The node last sent to.
        node: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection broke after the request was written: the owner may or may not have run it.
    #[error(
        "connection to {node} lost after the request was sent ({reason}): it may or may not have run it"
    )]
    Lost {
        /// The node.
        node: String,
        /// What ended the connection.
        reason: String,
    },
    /// The mesh has shut down.
    #[error("the mesh has shut down")]
    Shutdown,
}

impl ForwardError {
    /// Whether the owner's handler may have run the request despite the error. Only then is
    /// retrying unsafe for a request that is not idempotent; swimring itself never retries
    /// such a request.
    pub fn may_have_run(&self) -> bool {
        matches!(
            self,
            ForwardError::Timeout { .. }
                | ForwardError::Lost { .. }
                | ForwardError::Dropped { .. }
                | ForwardError::ReplyTooLarge { .. }
        )
    }

    /// The error for a refusal `node` gave (anything but a reply or a redirect).
    fn refused(node: &str, outcome: Outcome) -> ForwardError {
        let node = node.to_owned();
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        match outcome {
            Outcome::NoHandler => ForwardError::NoHandler { node },
            Outcome::Busy => ForwardError::Busy { node },
            Outcome::HopLimit { limit } => ForwardError::HopLimit { limit },
            Outcome::TooLarge { len, limit } => ForwardError::TooLarge {
                len: size(len),
                limit: size(limit),
            },
            Outcome::ReplyTooLarge { len, limit } => ForwardError::ReplyTooLarge {
                node,
                len: size(len),
                limit: size(limit),
            },
            // A reply is no refusal, and `Accepted` answers only messages: a confused peer.
            Outcome::Dropped | Outcome::Reply(_) | Outcome::Accepted => {
                ForwardError::Dropped { node }
            }
            Outcome::NotOwner { owner } => ForwardError::NotOwner { node, owner },
        }
    }
}

/// Forwarding counters, read into [`MeshStats`](super::MeshStats).
#[derive(Default)]
pub(crate) struct ForwardCounters {
    pub sent: AtomicU64,
    pub served: AtomicU64,
    pub refused: AtomicU64,
    pub busy: AtomicU64,
    pub malformed: AtomicU64,
    pub failed: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The serving side's state, shared by the loop's listener, the handles and every forward
/// connection.
pub(crate) struct Forwarding {
    pub config: ForwardConfig,
    pub counters: ForwardCounters,
    /// The application's queue; `None` (or a closed one) while no handler is registered.
    handler: RwLock<Option<mpsc::Sender<ForwardedRequest>>>,
    /// Replay windows of the forward frames this node receives, either side. Senders seal
    /// with a fresh instance per connection, so one window never sees two connections'
    /// counters interleaved.
    replay: Mutex<Sealer>,
    conns: Arc<Semaphore>,
}

impl Forwarding {
    pub(crate) fn new(config: ForwardConfig) -> Forwarding {
        Forwarding {
            config,
            counters: ForwardCounters::default(),
            handler: RwLock::new(None),
            replay: Mutex::new(Sealer::new()),
            conns: Arc::new(Semaphore::new(MAX_FORWARD_CONNS)),
        }
    }

    /// Registers a new handler queue, replacing (and closing) any previous one.
    pub(crate) fn register(&self) -> ForwardedRequests {
        let (tx, rx) = mpsc::channel(self.config.queue);
        *self.handler.write().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        ForwardedRequests { rx }
    }

    fn handler(&self) -> Option<mpsc::Sender<ForwardedRequest>> {
        let guard = self.handler.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|tx| !tx.is_closed()).cloned()
    }

    /// Checks that an opened forward payload is new and decodes it; a replay or a malformed
    /// frame is counted and gives `None`.
    pub(crate) fn accept(
        &self,
        shared: &Shared,
        plain: &[u8],
        origin: Option<Origin>,
    ) -> Option<ForwardFrame> {
        let fresh = {
            let mut guard = self.replay.lock().unwrap_or_else(|e| e.into_inner());
            guard.admit(Transport::Stream, origin)
        };
        if !fresh {
            bump(&shared.counters.replays_dropped);
            return None;
        }
        decode_forward(plain, &shared.label, self.config.max_frame)
            .inspect_err(|e| {
                bump(&self.counters.malformed);
                tracing::debug!(error = %e, "malformed forward frame: connection closed");
            })
            .ok()
    }

    /// Opens one sealed frame read from a forward connection and accepts it.
    fn open(&self, shared: &Shared, bytes: &Bytes) -> Option<ForwardFrame> {
        let (plain, origin) = shared.open(Transport::Stream, bytes)?.into_owned(bytes);
        self.accept(shared, &plain, origin)
    }
}

/// Seals frames and writes them on one side of a forward connection, flushing once per
/// burst, so requests queued together leave in one write.
struct FrameWriter {
    w: BufWriter<OwnedWriteHalf>,
    sealer: Sealer,
    shared: Arc<Shared>,
}

impl FrameWriter {
    fn new(w: OwnedWriteHalf, shared: Arc<Shared>) -> FrameWriter {
        FrameWriter {
            w: BufWriter::new(w),
            sealer: Sealer::new(),
            shared,
        }
    }

    /// Seals `plain` and buffers it, without flushing.
    async fn put(&mut self, plain: Bytes) -> std::io::Result<()> {
        let ring = self.shared.keyring();
        let sealed = (self.sealer).seal(&ring, &self.shared.label, Transport::Stream, plain);
        net::put_frame(&mut self.w, &sealed).await
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.w.flush().await
    }
}

/// Requests forwarded to this node for keys it owns, in arrival order. Made by
/// [`Mesh::serve_forwarded`](super::Mesh::serve_forwarded); dropping it unregisters the
/// handler (later requests are refused with [`ForwardError::NoHandler`]).
#[derive(Debug)]
pub struct ForwardedRequests {
    rx: mpsc::Receiver<ForwardedRequest>,
}

impl ForwardedRequests {
    /// The next request; `None` once the mesh has shut down or another handler replaced this one.
    pub async fn recv(&mut self) -> Option<ForwardedRequest> {
        self.rx.recv().await
    }
}

/// Where a request's answer goes: back to a caller on this node, or onto the connection it
/// came on (holding one of that connection's in-flight permits until it is written).
pub(crate) enum Replier {
    Local(oneshot::Sender<Outcome>),
    Remote {
        id: u64,
        out: mpsc::Sender<ReplyOut>,
        permit: OwnedSemaphorePermit,
    },
}

/// A reply on its way to a connection's writer.
pub(crate) struct ReplyOut {
    pub id: u64,
    pub outcome: Outcome,
    pub _permit: OwnedSemaphorePermit,
}

impl Replier {
    fn send(self, outcome: Outcome) {
        match self {
            Replier::Local(tx) => {
                let _ = tx.send(outcome);
            }
            // The channel holds as many replies as there are permits: never full.
            Replier::Remote { id, out, permit } => {
                let _ = out.try_send(ReplyOut {
                    id,
                    outcome,
                    _permit: permit,
                });
            }
        }
    }
}

/// One request for a key this node owns, with the handle to answer it. Dropping it without
/// [`reply`](ForwardedRequest::reply) tells the caller [`ForwardError::Dropped`].
pub struct ForwardedRequest {
    key: Bytes,
    body: Bytes,
    hops: u8,
    limit: usize,
    reply: Option<Replier>,
}

impl std::fmt::Debug for ForwardedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedRequest")
            .field("key", &self.key)
            .field("body_len", &self.body.len())
            .field("hops", &self.hops)
            .finish_non_exhaustive()
    }
}

impl ForwardedRequest {
    /// The key the request was routed by.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The application's request.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Nodes the request visited before this one (0: it came straight from its caller).
    pub fn hops(&self) -> u8 {
        self.hops
    }

    /// Sends the reply to the caller. A reply over the payload limit is not sent: the caller
    /// gets [`ForwardError::ReplyTooLarge`].
    pub fn reply(mut self, body: impl Into<Bytes>) {
        let body = body.into();
        let outcome = if body.len() > self.limit {
            Outcome::ReplyTooLarge {
                len: body.len() as u64,
                limit: self.limit as u64,
            }
        } else {
            Outcome::Reply(body)
        };
        self.answer(outcome);
    }

    fn answer(&mut self, outcome: Outcome) {
        if let Some(r) = self.reply.take() {
            r.send(outcome);
        }
    }
}

impl Drop for ForwardedRequest {
    fn drop(&mut self) {
        self.answer(Outcome::Dropped);
    }
}
