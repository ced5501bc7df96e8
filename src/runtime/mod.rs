//! The tokio runtime: [`Mesh`], a peer you embed in a Rust application.
//!
//! One task owns the protocol core ([`Swim`](crate::proto::Swim)) and runs the same loop as the simulator, over
//! real sockets: a UDP socket for probes and gossip, a TCP listener on the same port for
//! full-state exchange, the fallback probe and anything too large for a datagram. The
//! [`Mesh`] handle talks to that task through a channel and reads a snapshot of the member
//! list that the task keeps current, so queries never wait on the network.
//!
//! ```no_run
//! # async fn demo() -> Result<(), swimring::Error> {
//! use std::time::Duration;
//! use swimring::{Mesh, Preset};
//!
//! let mesh = Mesh::builder()
//!     .name("api-1")
//!     .bind("0.0.0.0:7946".parse().unwrap())
//!     .seeds(["seed.internal:7946"])
//!     .preset(Preset::Lan)
//!     .start()
//!     .await?;
//! let mut events = mesh.events();
//! tokio::spawn(async move {
//!     while let Ok(e) = events.recv().await {
//!         println!("{}: {:?}", e.kind(), e.member().map(|m| &m.name));
//!     }
//! });
//! for m in mesh.members() {
//!     println!("{} {} {:?}", m.name, m.addr, m.state);
//! }
//! mesh.leave(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! See `docs/RUNTIME.md` for the run loop, threading, the event-order guarantee and shutdown.

mod accept;
mod builder;
mod claim;
mod clock;
mod driver;
mod events;
mod forward;
#[cfg(target_os = "linux")]
mod icmp;
mod inbox;
mod join;
mod messages;
mod net;
mod operate;
mod placing;
mod ratelimit;
mod secure;
mod user_events;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

pub use crate::placement::{PlacementConfig, WEIGHT_TAG, build_ring, eligible};
pub use builder::{MeshBuilder, default_join_wait};
pub use events::{Events, RecvError, Subscription, TaskChange, TaskChanges};
pub use forward::{
    DEFAULT_FORWARD_HOP_LIMIT, DEFAULT_FORWARD_MAX_PAYLOAD, DEFAULT_FORWARD_QUEUE,
    DEFAULT_FORWARD_RETRIES, ForwardError, ForwardedRequest, ForwardedRequests,
};
pub use inbox::Inbox;
pub use messages::{
    DEFAULT_MAX_RELIABLE_MESSAGE, DEFAULT_MESSAGE_QUEUE, MessageError, Messages, UserMessage,
};
pub use user_events::{DEFAULT_USER_EVENT_QUEUE, UserEvents};

use crate::error::Error;
use crate::placement::{Balance, FencingToken, OwnedTask};
use crate::proto::{Config, Member, Stats};
use crate::wire::{Key, KeyId};
use driver::{Command, Shared};

/// Default gossip port (memberlist's).
pub const DEFAULT_PORT: u16 = 7946;
/// Default number of events held for a slow subscriber before it lags.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;
/// How long one seed's DNS lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands waiting for the loop.
const COMMAND_QUEUE: usize = 64;

crate::proto::counters! {
    /// Counters: the protocol core's, and the runtime's own. All only grow, except
    /// `protocol.health_score`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct MeshStats {
        nested
        /// The core's counters (listed first by [`MeshStats::counters`]) and its local
        /// health score.
        pub protocol: Stats,
        /// Datagrams the socket would not take (full buffer, no route); they were dropped.
        pub send_errors: u64,
        /// Errors reading the UDP socket.
        pub recv_errors: u64,
        /// ICMP port unreachable heard for datagrams this node sent (Linux): each is reported to the core as crash evidence about its destination.
        pub icmp_unreachable: u64,
        /// Watch connections this node opened to the member after it in name order and that member took.
        pub watches_taken: u64,
        /// Watch connections that ended (the watched process closed them, or its host reset them): each is reported to the core, which probes that member at once.
        pub watch_ends: u64,
        /// Stream exchanges that failed either way (connect refused, timeout, oversize frame, peer hung up).
        pub stream_failures: u64,
        /// Inbound TCP connections accepted.
        pub streams_accepted: u64,
        /// Inbound TCP connections closed unserved because too many were open.
        pub streams_refused: u64,
        /// Datagrams and stream payloads that did not open (garbage, an unknown key, another cluster, tampering, sealed against plain): dropped before the core saw them.
        pub decrypt_failures: u64,
        /// Packets that opened but had been seen before (a replay), or were too far behind their sender's newest to tell: dropped.
        pub replays_dropped: u64,
        /// Forwarded requests this node sent to another node (each attempt counts).
        pub forwards_sent: u64,
        /// Forwarded requests handed to this node's handler (from peers or from itself).
        pub forwards_served: u64,
        /// Forwarded requests this node refused before its handler saw them (not the owner, no handler, busy, hop limit, too large).
        pub forwards_refused: u64,
        /// Of those refused, the ones refused because the handler's queue was full.
        pub forwards_busy: u64,
        /// Forward frames that did not decode or were oversized, and requests or replies on the wrong side: the connection was closed.
        pub forwards_malformed: u64,
        /// Calls to `Mesh::forward` on this node that ended in an error.
        pub forwards_failed: u64,
        /// Messages this node sent: datagrams handed to the socket, reliable messages written.
        pub messages_sent: u64,
        /// Messages handed to this node's subscriber (`Mesh::messages`), either kind.
        pub messages_received: u64,
        /// Messages that arrived and were dropped: the queue was full, nobody subscribed, or a reliable one was too large.
        pub messages_dropped: u64,
        /// Message datagrams that opened but did not decode: dropped, nothing else changed.
        pub messages_malformed: u64,
        /// User events delivered here but dropped before the application: its queue (`Mesh::user_events`) was full, or nobody subscribed.
        pub user_events_dropped: u64,
        ;
    }
}

struct Inner {
    cmds: mpsc::Sender<Command>,
    forward: forward::Client,
    outbox: messages::Outbox,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    name: String,
    local_addr: SocketAddr,
    advertise: SocketAddr,
    config: Config,
}

/// A running peer: the handle to a mesh node embedded in this process.
///
/// Cloning is cheap; all clones drive the same node. Queries ([`Mesh::members`],
/// [`Mesh::stats`], …) read a snapshot and never wait on the network. Dropping the last
/// clone stops the node as [`Mesh::shutdown`] does (without telling peers: call
/// [`Mesh::leave`] first to leave gracefully).
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("name", &self.inner.name)
            .field("local_addr", &self.inner.local_addr)
            .field("advertise", &self.inner.advertise)
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// A builder with the defaults described on each of its methods.
    pub fn builder() -> MeshBuilder {
        MeshBuilder::default()
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address the sockets are bound to (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address peers reach this node at.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner.advertise
    }

    /// The configuration in force, as given (with keys, the core packs datagrams into
    /// `max_datagram` less the encryption envelope, so sealed datagrams stay within it).
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Ids of the installed keys, the primary (the one that seals) first. Empty on a node
    /// without encryption. Key bytes are never shown.
    pub fn keys(&self) -> Vec<KeyId> {
        self.inner.shared.keyring().ids()
    }

    /// Installs a key that opens packets, without using it to seal yet: step one of a
    /// rotation, done on every node before any node uses the key. Installing a key already
    /// held does nothing. A node started without keys refuses ([`KeyError::Plaintext`]).
    ///
    /// [`KeyError::Plaintext`]: crate::wire::KeyError::Plaintext
    pub fn install_key(&self, key: Key) -> Result<(), Error> {
        let id = key.id();
        self.inner.shared.edit_keys(|r| r.install(key))?;
        tracing::info!(node = %self.inner.name, key = %id, "key installed");
        Ok(())
    }

    /// Makes an installed key the primary: everything this node sends from now on is sealed
    /// with it. Step two of a rotation, once every node has installed it.
    pub fn use_key(&self, id: KeyId) -> Result<(), Error> {
        self.inner.shared.edit_keys(|r| r.use_key(id))?;
        tracing::info!(node = %self.inner.name, key = %id, "key is now primary");
        Ok(())
    }

    /// Removes a key: packets sealed with it no longer open here. Step three of a rotation,
    /// once no node seals with it. The primary key cannot be removed.
    pub fn remove_key(&self, id: KeyId) -> Result<(), Error> {
        self.inner.shared.edit_keys(|r| r.remove(id))?;
        tracing::info!(node = %self.inner.name, key = %id, "key removed");
        Ok(())
    }

    /// Every member this node knows, itself included, in name order. Dead and left members
    /// are kept for [`Config::dead_retention`].
    pub fn members(&self) -> Vec<Member> {
        self.inner.shared.read(|s| s.members.clone())
    }

    /// A member by name (this node included).
    pub fn member(&self, name: &str) -> Option<Member> {
        self.inner.shared.read(|s| {
            s.members
                .binary_search_by(|m| m.name.as_str().cmp(name))
                .ok()
                .map(|i| s.members[i].clone())
        })
    }

    /// This node's own record.
    pub fn local(&self) -> Member {
        self.inner.shared.read(|s| s.local.clone())
    }

    /// Members alive or suspect, this node included (unless it has left).
    pub fn live_count(&self) -> usize {
        self.inner.shared.read(|s| s.live)
    }

    /// Counters of the core and the runtime.
    pub fn stats(&self) -> MeshStats {
        self.inner.shared.stats()
    }

    /// A new subscription to membership events: it misses nothing emitted after this call.
    /// See [`Events`] for the ordering guarantee.
    pub fn events(&self) -> Events {
        Events::new(self.inner.shared.events.upgrade())
    }

    /// A new subscription to this node's task changes: after every membership change that
    /// moved work, the tasks it acquired and released. See [`Subscription`] for ordering.
    pub fn task_changes(&self) -> TaskChanges {
        TaskChanges::new(self.inner.shared.tasks.upgrade())
    }

    /// The member that owns `key` in this node's view (consistent hashing over the members
    /// alive or suspect, see [`PlacementConfig`]). `None` while no member may own work.
    pub fn owner(&self, key: impl AsRef<[u8]>) -> Option<String> {
        self.inner
            .shared
            .read(|s| s.ring.owner(key.as_ref()).map(str::to_owned))
    }

    /// Up to `n` distinct members in ring order for `key`: the owner, then its failover and
    /// replica order.
    pub fn owners(&self, key: impl AsRef<[u8]>, n: usize) -> Vec<String> {
        self.inner.shared.read(|s| {
            s.ring
                .owners(key.as_ref(), n)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
    }

    /// Where to route *new* work for `key`: its owner, or the next member in ring order if
    /// the owner is suspect. (Ownership itself never skips suspects, so a stall moves nothing.)
    pub fn route(&self, key: impl AsRef<[u8]>) -> Option<String> {
        self.inner.shared.read(|s| {
            let suspect = |name: &str| {
                s.members
                    .binary_search_by(|m| m.name.as_str().cmp(name))
                    .is_ok_and(|i| s.members[i].state == crate::wire::State::Suspect)
            };
            s.ring
                .owner_skipping(key.as_ref(), suspect)
                .map(str::to_owned)
        })
    }

    /// Checksum of the ring this node places work on: equal on every node holding the same
    /// members (and weights), so comparing it tells whether the mesh agrees.
    pub fn ring_checksum(&self) -> u64 {
        self.inner.shared.read(|s| s.ring.checksum())
    }

    /// The tasks this node owns now, sorted by key, each with the fencing token it holds it
    /// by (the same for all: see [`Mesh::token`]).
    pub fn owned_tasks(&self) -> Vec<OwnedTask> {
        self.inner.shared.read(|s| {
            s.owned
                .iter()
                .map(|key| OwnedTask {
                    key: key.clone(),
                    token: s.token,
                })
                .collect()
        })
    }

    /// How the registered tasks are spread over the members that may own work, in this
    /// node's view: each member's weight and task count (`swimring tasks --all`).
    pub fn balance(&self) -> Balance {
        self.inner.shared.read(|s| s.balance.clone())
    }

    /// The fencing token for a write on behalf of task `key`: `Some` while this node owns
    /// it. Send it with the write and let the store refuse tokens below the highest it has
    /// seen for the task (docs/FENCING.md).
    pub fn token(&self, key: &str) -> Option<FencingToken> {
        self.inner.shared.read(|s| {
            s.owned
                .binary_search_by(|k| k.as_str().cmp(key))
                .ok()
                .map(|_| s.token)
        })
    }

    /// Registers task keys; the ones this node now owns arrive as `acquired` on
    /// [`Mesh::task_changes`].
    pub async fn add_tasks<I, S>(&self, keys: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys = keys.into_iter().map(Into::into).collect();
        let (done, rx) = oneshot::channel();
        self.command(Command::AddTasks { keys, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Unregisters task keys; the ones this node owned arrive as `released`.
    pub async fn remove_tasks<I, S>(&self, keys: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys = keys.into_iter().map(Into::into).collect();
        let (done, rx) = oneshot::channel();
        self.command(Command::RemoveTasks { keys, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Whether `key` is a registered task of this node ([`MeshBuilder::tasks`],
    /// [`Mesh::add_tasks`]). [`Mesh::owner`] answers for any key; this tells a task from a
    /// key that merely hashes somewhere.
    pub async fn is_task(&self, key: impl Into<String>) -> Result<bool, Error> {
        let (answer, rx) = oneshot::channel();
        let key = key.into();
        self.command(Command::IsTask { key, answer }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Joins through more seeds (`host:port`; names are looked up now). Returns how many of
    /// the resolved seed addresses answered the full-state exchange.
    ///
    /// Seeds that do not resolve are logged and skipped; if none resolves, the first one's
    /// [`Error::UnresolvableSeed`] is returned. After [`Mesh::leave`] began: [`Error::Left`].
    pub async fn join<I, S>(&self, seeds: I) -> Result<usize, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
        let (addrs, mut unresolved) = resolve(&seeds).await;
        if addrs.is_empty() && !unresolved.is_empty() {
            return Err(unresolved.swap_remove(0));
        }
        for e in &unresolved {
            tracing::warn!(node = %self.inner.name, error = %e, "seed skipped");
        }
        self.join_addrs(addrs).await
    }

    async fn join_addrs(&self, addrs: Vec<SocketAddr>) -> Result<usize, Error> {
        let (answered, rx) = oneshot::channel();
        self.command(Command::Join { addrs, answered }).await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Publishes new metadata (at most [`Config::max_meta`] bytes): peers see
    /// [`Event::Updated`](crate::Event::Updated).
    pub async fn set_meta(&self, meta: impl Into<Bytes>) -> Result<(), Error> {
        let meta = meta.into();
        let (done, rx) = oneshot::channel();
        self.command(Command::SetMeta { meta, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Edits this node's key=value tags and publishes them. The edit runs inside the loop, so
    /// concurrent edits do not overwrite each other. Fails with [`Error::MetaTooLarge`] if the
    /// encoded tags exceed [`Config::max_meta`], or [`Error::NotTags`] if the current
    /// metadata is raw bytes that are not tags.
    pub async fn update_tags(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, String>) + Send + 'static,
    ) -> Result<(), Error> {
        let (done, rx) = oneshot::channel();
        let edit = Box::new(edit);
        self.command(Command::UpdateTags { edit, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Leaves gracefully, then shuts down: peers mark this node left rather than dead. Waits
    /// until the leave has been gossiped as widely as the protocol intends, or `timeout`.
    /// Returns whether the leave was fully disseminated before the timeout.
    pub async fn leave(&self, timeout: Duration) -> Result<bool, Error> {
        let (disseminated, rx) = oneshot::channel();
        self.command(Command::Leave { disseminated }).await?;
        let done = matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())));
        if !done {
            tracing::warn!(node = %self.inner.name, ?timeout, "leave not fully disseminated before the timeout");
        }
        self.shutdown().await;
        Ok(done)
    }

    /// Stops the node at once, without telling peers (they will suspect it and declare it
    /// dead, as after a crash), and waits until the loop and every task it spawned have
    /// stopped and the sockets are closed. Idempotent; every clone sees the mesh shut down.
    pub async fn shutdown(&self) {
        self.inner.forward.close();
        self.inner.shared.messages.close();
        self.inner.shared.user_events.close();
        let _ = self.inner.cmds.send(Command::Shutdown).await;
        let mut task = self.inner.task.lock().await;
        if let Some(t) = task.take()
            && let Err(e) = t.await
            && e.is_panic()
        {
            tracing::error!(node = %self.inner.name, error = %e, "the run loop panicked");
        }
    }

    /// Sends `body` to the owner of `key` and returns its reply. If this node owns the key
    /// (in its view, as [`Mesh::owner`] says), its own handler serves it without touching the
    /// network; otherwise the request goes to the owner over TCP (sealed with the cluster key,
    /// on a persistent connection shared with other requests), within
    /// [`MeshBuilder::forward_timeout`].
    ///
    /// A node that refuses because it does not own the key names the owner it sees, and the
    /// request follows that name; an owner that cannot be reached is replaced by the next
    /// owner in ring order, up to [`MeshBuilder::forward_retries`] times. No request visits
    /// more than [`MeshBuilder::forward_hop_limit`] nodes. A request is sent again only when
    /// no handler can have seen it, so each call runs at most once: an error for which
    /// [`ForwardError::may_have_run`] holds leaves the retry to the application.
    pub async fn forward(
        &self,
        key: impl AsRef<[u8]>,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, ForwardError> {
        let key = Bytes::copy_from_slice(key.as_ref());
        self.inner.forward.forward(key, body.into()).await
    }

    /// Registers this node's handler of forwarded requests: every request for a key this node
    /// owns arrives on the returned queue (at most [`MeshBuilder::forward_queue`] waiting; more
    /// are refused as busy, never waited for). Replaces any handler registered before, whose
    /// queue ends. Without a handler, requests are refused with [`ForwardError::NoHandler`].
    pub fn serve_forwarded(&self) -> ForwardedRequests {
        self.inner.shared.forward.register()
    }

    async fn command(&self, cmd: Command) -> Result<(), Error> {
        self.inner.cmds.send(cmd).await.map_err(|_| Error::Shutdown)
    }
}

/// Resolves every seed; returns the addresses (deduplicated, in order) and an error for each
/// seed that gave none.
pub(crate) async fn resolve(seeds: &[String]) -> (Vec<SocketAddr>, Vec<Error>) {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut errors = Vec::new();
    for seed in seeds {
        let unresolvable = |reason: String| Error::UnresolvableSeed {
            seed: seed.clone(),
            reason,
        };
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(seed.as_str())).await {
            Ok(Ok(found)) => {
                let before = addrs.len();
                for a in found {
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
                if addrs.len() == before {
                    errors.push(unresolvable("no addresses".into()));
                }
            }
            Ok(Err(e)) => errors.push(unresolvable(e.to_string())),
            Err(_) => errors.push(unresolvable(format!(
                "lookup took over {RESOLVE_TIMEOUT:?}"
            ))),
        }
    }
    (addrs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Mesh>();
        fn send<T: Send>() {}
        send::<Events>();
    }
}
