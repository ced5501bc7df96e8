//! The tokio runtime: [`Mesh`], a peer you embed in a Rust application.
//!
//! One task owns the protocol core ([`Swim`]) and runs the same loop as the simulator, over
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

mod clock;
mod driver;
mod events;
mod join;
mod net;
mod operate;
mod ratelimit;
mod secure;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use crate::placement::{PlacementConfig, WEIGHT_TAG, build_ring, eligible};
pub use events::{Events, RecvError, Subscription, TaskChange, TaskChanges};

use crate::error::Error;
use crate::placement::LocalTasks;
use crate::proto::{Config, Identity, Member, Preset, Stats, Swim};
use crate::wire::codec::encode_tags;
use crate::wire::seal::SEAL_OVERHEAD;
use crate::wire::{Key, KeyId, Keyring, MAX_NAME_LEN};
use driver::{Command, Driver, Outputs, Shared};

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
        ;
    }
}

/// Configures and starts a [`Mesh`]. Made by [`Mesh::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct MeshBuilder {
    name: Option<String>,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    seeds: Vec<String>,
    label: Option<String>,
    meta: Bytes,
    config: Config,
    stream_timeout: Option<Duration>,
    event_capacity: usize,
    placement: PlacementConfig,
    tasks: Vec<String>,
    keys: Vec<Key>,
    allow_plaintext: bool,
}

impl Default for MeshBuilder {
    fn default() -> Self {
        MeshBuilder {
            name: None,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            advertise: None,
            seeds: Vec::new(),
            label: None,
            meta: Bytes::new(),
            config: Config::lan(),
            stream_timeout: None,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            placement: PlacementConfig::default(),
            tasks: Vec::new(),
            keys: Vec::new(),
            allow_plaintext: false,
        }
    }
}

impl MeshBuilder {
    /// The node's unique name, 1 to 64 bytes. Default: the host name (from
    /// `/proc/sys/kernel/hostname` or `$HOSTNAME`, else `swimring`) plus `-` and four random
    /// hex digits, so two nodes on one host do not clash.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Address to bind the UDP socket and the TCP listener to (the same port for both).
    /// Port 0 picks a free port; see [`Mesh::local_addr`]. Default `0.0.0.0:7946`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Address other members reach this node at, when it differs from the bound one (NAT,
    /// containers). It must name a concrete IP and port.
    ///
    /// Default: the bound address; if that is unspecified (`0.0.0.0` or `::`), the source
    /// address the kernel would use to reach the first seed (or, with no seed resolvable, its
    /// default route), with the bound port. Starting fails with [`Error::Advertise`] if there
    /// is no such route.
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// Seeds to join through, as `host:port` (`[v6]:port` for IPv6 literals). Host names are
    /// looked up again at every join attempt, and one name may stand for many peers.
    pub fn seeds<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// Cluster label: meshes with different labels ignore each other. Overrides the label of
    /// [`MeshBuilder::config`].
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Initial metadata (raw bytes, at most [`Config::max_meta`]).
    pub fn meta(mut self, meta: impl Into<Bytes>) -> Self {
        self.meta = meta.into();
        self
    }

    /// Initial metadata as key=value tags (see [`encode_tags`]); replaces [`MeshBuilder::meta`].
    pub fn tags(mut self, tags: &BTreeMap<String, String>) -> Self {
        self.meta = encode_tags(tags);
        self
    }

    /// Starts from a preset's timings ([`Preset::Lan`] by default), replacing the config.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.config = preset.config();
        self
    }

    /// Uses this configuration (validated at start; the error names the bad field).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Edits the configuration in place, e.g. on top of a preset:
    /// `.preset(Preset::Local).configure(|c| c.max_meta = 256)`.
    pub fn configure(mut self, edit: impl FnOnce(&mut Config)) -> Self {
        edit(&mut self.config);
        self
    }

    /// Bound on one TCP exchange (connect, write, read the reply). Default: ten probe
    /// timeouts (5 s on the LAN preset).
    pub fn stream_timeout(mut self, timeout: Duration) -> Self {
        self.stream_timeout = Some(timeout);
        self
    }

    /// Events held for a slow subscriber before it is told it lagged. Default
    /// [`DEFAULT_EVENT_CAPACITY`].
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// How tasks are placed on members: virtual nodes, plain or bounded-load hashing, and an
    /// optional tag filter on who may own work. Every member of a mesh must use the same.
    pub fn placement(mut self, placement: PlacementConfig) -> Self {
        self.placement = placement;
        self
    }

    /// Task keys registered from the start (more with [`Mesh::add_tasks`]).
    pub fn tasks<I, S>(mut self, tasks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tasks.extend(tasks.into_iter().map(Into::into));
        self
    }

    /// Cluster keys: the first (primary) seals every datagram and stream payload this node
    /// sends (XChaCha20-Poly1305, bound to the cluster label); each of them opens what
    /// arrives. Every member must hold the key its peers seal with. Rotate later with
    /// [`Mesh::install_key`], [`Mesh::use_key`] and [`Mesh::remove_key`]. Default: none.
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys = keys.into_iter().collect();
        self
    }

    /// Allows a node without keys to bind or advertise an address beyond loopback, sending
    /// membership in the clear to anyone on the network (logged as a warning). Without it,
    /// such a node refuses to start with [`Error::Plaintext`]. Default: false.
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    /// Binds the sockets, starts the run loop and joins the seeds.
    ///
    /// A node that reaches no seed (none answered, or none resolved) still starts, alone: it
    /// logs a warning and keeps retrying the seeds in the background, re-resolving them each
    /// time, until it has a live peer. Must be called within a tokio runtime.
    pub async fn start(self) -> Result<Mesh, Error> {
        self.start_subscribed().await.map(|(mesh, _, _)| mesh)
    }

    /// Like [`MeshBuilder::start`], also returning subscriptions made before the node did
    /// anything: they see every event and task change from the first (the seeds joining, the
    /// initial tasks acquired), which subscriptions made after `start` returns may miss.
    pub async fn start_subscribed(self) -> Result<(Mesh, Events, TaskChanges), Error> {
        let mut config = self.config;
        if let Some(label) = self.label {
            config.label = label;
        }
        config.validate()?;
        if self.event_capacity == 0 {
            return Err(Error::Config {
                field: "event_capacity",
                reason: "must be at least 1".into(),
            });
        }
        let stream_timeout = self
            .stream_timeout
            .unwrap_or(config.probe_timeout.saturating_mul(10));
        if stream_timeout.is_zero() {
            return Err(Error::Config {
                field: "stream_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if let Some(a) = self.advertise
            && (a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(Error::Config {
                field: "advertise",
                reason: format!("{a} is not reachable: give a concrete IP and a non-zero port"),
            });
        }
        crate::ring::RingConfig {
            vnodes_per_member: self.placement.vnodes_per_member,
        }
        .validate()
        .map_err(|e| Error::Config {
            field: "placement.vnodes_per_member",
            reason: e.to_string(),
        })?;
        let keyring = Keyring::new(self.keys)?;
        // The core packs datagrams into what is left once the envelope is added.
        let mut core_config = config.clone();
        if !keyring.is_empty() {
            let least = 512 + SEAL_OVERHEAD;
            if config.max_datagram < least {
                return Err(Error::Config {
                    field: "max_datagram",
                    reason: format!("must be at least {least} with encryption"),
                });
            }
            core_config.max_datagram -= SEAL_OVERHEAD;
        }
        check_plaintext(self.allow_plaintext, &keyring, self.bind)?;
        let name = self.name.unwrap_or_else(default_name);

        let bound = net::bind(self.bind)?;
        let bound_addr = bound.addr;
        let (seed_addrs, unresolved) = resolve(&self.seeds).await;
        for e in &unresolved {
            tracing::warn!(error = %e, "seed skipped");
        }
        let advertise = match self.advertise {
            Some(a) => a,
            None if bound.addr.ip().is_unspecified() => {
                let ip =
                    net::route_source(bound.addr, seed_addrs.first().copied()).map_err(|e| {
                        Error::Advertise {
                            reason: format!("bound to {} and {e}", bound.addr),
                        }
                    })?;
                SocketAddr::new(ip, bound.addr.port())
            }
            None => bound.addr,
        };
        if advertise != bound.addr {
            check_plaintext(self.allow_plaintext, &keyring, advertise)?;
        }
        let span = tracing::info_span!("mesh", node = %name);
        let id = Identity {
            name,
            addr: advertise,
            run: clock::unix_millis(),
            meta: self.meta,
        };
        let swim = Swim::new(core_config, id, rand::random(), clock::now())?;
        let out = Outputs {
            events: tokio::sync::broadcast::channel(self.event_capacity).0,
            tasks: tokio::sync::broadcast::channel(self.event_capacity).0,
        };
        if let Some(k) = keyring.primary() {
            tracing::info!(parent: &span, primary = %k.id(), keys = keyring.ids().len(), "packets are sealed");
        }
        let shared = Arc::new(Shared::new(&swim, &out, keyring));
        let subscriptions = (
            Events::new(Some(out.events.clone())),
            TaskChanges::new(Some(out.tasks.clone())),
        );
        let mut placer = LocalTasks::new(&swim.local().name, self.placement);
        placer.add(self.tasks);
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let local = swim.local().clone();
        let seeds_needed = !self.seeds.is_empty();
        let task = {
            let _enter = span.enter();
            let mut driver = Driver::new(
                swim,
                bound,
                cmd_rx,
                Arc::clone(&shared),
                out,
                placer,
                stream_timeout,
            );
            tracing::info!(bind = %bound_addr, advertise = %advertise, run = local.run, "mesh started");
            if seeds_needed {
                let retry = driver::retry_seeds(
                    self.seeds.clone(),
                    cmd_tx.downgrade(),
                    Arc::clone(&shared),
                    crate::proto::SeedRetry::new(&config),
                );
                driver.tasks.spawn(retry.in_current_span());
            }
            tokio::spawn(driver.run().in_current_span())
        };
        let mesh = Mesh {
            inner: Arc::new(Inner {
                cmds: cmd_tx,
                shared,
                task: Mutex::new(Some(task)),
                name: local.name,
                local_addr: bound_addr,
                advertise,
                config,
            }),
        };
        if seeds_needed {
            let answered = if seed_addrs.is_empty() {
                0
            } else {
                mesh.join_addrs(seed_addrs).await?
            };
            if answered == 0 {
                tracing::warn!(parent: &span, seeds = ?self.seeds,
                    "no seed answered: starting alone, retrying the seeds in the background");
            } else {
                tracing::info!(parent: &span, answered, "joined through the seeds");
            }
        }
        Ok((mesh, subscriptions.0, subscriptions.1))
    }
}

struct Inner {
    cmds: mpsc::Sender<Command>,
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

    /// Task keys this node owns now, sorted.
    pub fn owned_tasks(&self) -> Vec<String> {
        self.inner.shared.read(|s| s.owned.clone())
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
        self.send(Command::AddTasks { keys, done }).await?;
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
        self.send(Command::RemoveTasks { keys, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Whether `key` is a registered task of this node ([`MeshBuilder::tasks`],
    /// [`Mesh::add_tasks`]). [`Mesh::owner`] answers for any key; this tells a task from a
    /// key that merely hashes somewhere.
    pub async fn is_task(&self, key: impl Into<String>) -> Result<bool, Error> {
        let (answer, rx) = oneshot::channel();
        let key = key.into();
        self.send(Command::IsTask { key, answer }).await?;
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
        self.send(Command::Join { addrs, answered }).await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Publishes new metadata (at most [`Config::max_meta`] bytes): peers see
    /// [`Event::Updated`](crate::Event::Updated).
    pub async fn set_meta(&self, meta: impl Into<Bytes>) -> Result<(), Error> {
        let meta = meta.into();
        let (done, rx) = oneshot::channel();
        self.send(Command::SetMeta { meta, done }).await?;
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
        self.send(Command::UpdateTags { edit, done }).await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Leaves gracefully, then shuts down: peers mark this node left rather than dead. Waits
    /// until the leave has been gossiped as widely as the protocol intends, or `timeout`.
    /// Returns whether the leave was fully disseminated before the timeout.
    pub async fn leave(&self, timeout: Duration) -> Result<bool, Error> {
        let (disseminated, rx) = oneshot::channel();
        self.send(Command::Leave { disseminated }).await?;
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
        let _ = self.inner.cmds.send(Command::Shutdown).await;
        let mut task = self.inner.task.lock().await;
        if let Some(t) = task.take()
            && let Err(e) = t.await
            && e.is_panic()
        {
            tracing::error!(node = %self.inner.name, error = %e, "the run loop panicked");
        }
    }

    async fn send(&self, cmd: Command) -> Result<(), Error> {
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

/// Refuses a node without keys reachable beyond this host, unless plaintext is allowed.
fn check_plaintext(allow: bool, keyring: &Keyring, addr: SocketAddr) -> Result<(), Error> {
    if !keyring.is_empty() || addr.ip().is_loopback() {
        return Ok(());
    }
    if !allow {
        return Err(Error::Plaintext { addr });
    }
    tracing::warn!(%addr, "no cluster key: membership travels unencrypted and unauthenticated beyond this host");
    Ok(())
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "swimring".to_owned());
    let suffix = format!("-{:04x}", rand::random::<u16>());
    let keep = host.floor_char_boundary(MAX_NAME_LEN - suffix.len());
    format!("{}{suffix}", &host[..keep])
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

    #[test]
    fn default_name_fits_and_is_suffixed() {
        let n = default_name();
        assert!(!n.is_empty() && n.len() <= MAX_NAME_LEN, "{n}");
        let (_, suffix) = n.rsplit_once('-').unwrap();
        assert_eq!(suffix.len(), 4);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
