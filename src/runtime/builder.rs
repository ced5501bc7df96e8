//! [`MeshBuilder`]: every setting of a node, checked before anything is bound, and the start
//! that binds the sockets, spawns the run loop and joins the seeds.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use tracing::Instrument;

use super::claim::JoinGate;
use super::driver::{self, Driver, Outputs, Shared};
use super::forward::{
    self, DEFAULT_FORWARD_HOP_LIMIT, DEFAULT_FORWARD_MAX_PAYLOAD, DEFAULT_FORWARD_QUEUE,
    DEFAULT_FORWARD_RETRIES, ForwardConfig, Forwarding,
};
use super::messages::{
    DEFAULT_MAX_RELIABLE_MESSAGE, DEFAULT_MESSAGE_QUEUE, MessageConfig, Messaging, Outbox,
};
use super::placing::Placing;
use super::user_events::DEFAULT_USER_EVENT_QUEUE;
use super::{
    COMMAND_QUEUE, DEFAULT_EVENT_CAPACITY, DEFAULT_PORT, Events, Inner, Mesh, PlacementConfig,
    TaskChanges, clock, net, resolve,
};
use crate::error::Error;
use crate::placement::LocalTasks;
use crate::proto::{Config, Identity, Preset, SeedRetry, Swim};
use crate::wire::codec::{encode_tags, max_message_body};
use crate::wire::seal::SEAL_OVERHEAD;
use crate::wire::{Key, Keyring, MAX_NAME_LEN};

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
    join_wait: Option<Duration>,
    event_capacity: usize,
    placement: PlacementConfig,
    tasks: Vec<String>,
    keys: Vec<Key>,
    allow_plaintext: bool,
    forward_timeout: Option<Duration>,
    forward_retries: u32,
    forward_hop_limit: u8,
    forward_max_payload: usize,
    forward_queue: usize,
    message_queue: usize,
    max_reliable_message: usize,
    user_event_queue: usize,
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
            join_wait: None,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            placement: PlacementConfig::default(),
            tasks: Vec::new(),
            keys: Vec::new(),
            allow_plaintext: false,
            forward_timeout: None,
            forward_retries: DEFAULT_FORWARD_RETRIES,
            forward_hop_limit: DEFAULT_FORWARD_HOP_LIMIT,
            forward_max_payload: DEFAULT_FORWARD_MAX_PAYLOAD,
            forward_queue: DEFAULT_FORWARD_QUEUE,
            message_queue: DEFAULT_MESSAGE_QUEUE,
            max_reliable_message: DEFAULT_MAX_RELIABLE_MESSAGE,
            user_event_queue: DEFAULT_USER_EVENT_QUEUE,
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

    /// Initial metadata as key=value tags (see [`encode_tags`]); replaces
    /// [`MeshBuilder::meta`]. Takes any pairs: `.tags([("role", "worker")])`, or a map by
    /// reference.
    pub fn tags<K, V>(mut self, tags: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let tags: BTreeMap<String, String> = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.meta = encode_tags(&tags);
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

    /// How long a node started with seeds claims no task while it has not joined (merged a
    /// full state from a member). Past it, the node claims what its view gives it and logs a
    /// warning that it does so without having joined. A node started without seeds claims at
    /// once. Default [`default_join_wait`]: the longest seed retry wait (ten probe intervals)
    /// plus the stream timeout (12.5 s on the LAN preset, 3 s on the local one).
    pub fn join_wait(mut self, wait: Duration) -> Self {
        self.join_wait = Some(wait);
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

    /// Bound on one [`Mesh::forward`] call, every hop and retry included. Past it the call
    /// fails with [`ForwardError::Timeout`](super::ForwardError::Timeout). Default: the
    /// stream timeout ([`MeshBuilder::stream_timeout`]).
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.forward_timeout = Some(timeout);
        self
    }

    /// How many times a forward moves on to the next owner in ring order when a node cannot
    /// be reached or refuses without naming a usable owner (never once the request may have
    /// been served). Default [`DEFAULT_FORWARD_RETRIES`].
    pub fn forward_retries(mut self, retries: u32) -> Self {
        self.forward_retries = retries;
        self
    }

    /// Most nodes one forwarded request may visit, redirects and retries included; carried in
    /// the request, so a node refuses one that has visited that many. At least 1. Default
    /// [`DEFAULT_FORWARD_HOP_LIMIT`].
    pub fn forward_hop_limit(mut self, hops: u8) -> Self {
        self.forward_hop_limit = hops;
        self
    }

    /// Largest request or reply body a forward carries, in bytes; larger ones are refused
    /// with a clear error and never sent. At most `max_stream` less 8 KiB of room for the key
    /// and framing. Default [`DEFAULT_FORWARD_MAX_PAYLOAD`] (1 MiB).
    pub fn forward_max_payload(mut self, bytes: usize) -> Self {
        self.forward_max_payload = bytes;
        self
    }

    /// Forwarded requests waiting for this node's handler; past it they are refused as busy
    /// (counted in `forwards_busy`), so a slow handler never holds up a connection or the
    /// protocol. At least 1. Default [`DEFAULT_FORWARD_QUEUE`].
    pub fn forward_queue(mut self, requests: usize) -> Self {
        self.forward_queue = requests;
        self
    }

    /// Messages ([`Mesh::send`], [`Mesh::send_reliable`]) waiting for this node's
    /// application on [`Mesh::messages`]; past it they are dropped and counted in
    /// `messages_dropped` (a reliable sender is told it was busy), so a slow reader never
    /// holds up the protocol. At least 1. Default [`DEFAULT_MESSAGE_QUEUE`].
    pub fn message_queue(mut self, messages: usize) -> Self {
        self.message_queue = messages;
        self
    }

    /// Largest body [`Mesh::send_reliable`] sends, and this node accepts, in bytes; larger
    /// ones are refused with a clear error, by the sender before anything is sent. At most
    /// `max_stream` less 8 KiB of room for framing. Default [`DEFAULT_MAX_RELIABLE_MESSAGE`]
    /// (1 MiB). (A best-effort message is bounded by the datagram: [`Mesh::max_message_len`].)
    pub fn max_reliable_message(mut self, bytes: usize) -> Self {
        self.max_reliable_message = bytes;
        self
    }

    /// User events delivered here ([`Mesh::broadcast`] anywhere in the mesh) waiting for
    /// this node's application on [`Mesh::user_events`]; past it they are dropped and
    /// counted in `user_events_dropped`, so a slow reader never holds up the protocol. At
    /// least 1. Default [`DEFAULT_USER_EVENT_QUEUE`].
    pub fn user_event_queue(mut self, events: usize) -> Self {
        self.user_event_queue = events;
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
    pub async fn start_subscribed(mut self) -> Result<(Mesh, Events, TaskChanges), Error> {
        let checked = self.check()?;
        let bound = net::bind(self.bind)?;
        let (seed_addrs, unresolved) = resolve(&self.seeds).await;
        for e in &unresolved {
            tracing::warn!(error = %e, "seed skipped");
        }
        let advertise = self.advertise_for(bound.addr, seed_addrs.first().copied())?;
        if advertise != bound.addr {
            check_plaintext(self.allow_plaintext, &checked.keyring, advertise)?;
        }
        let seeds = self.seeds.clone();
        let (mesh, events, tasks) = self.launch(checked, bound, advertise)?;
        mesh.join_seeds(&seeds, seed_addrs).await?;
        Ok((mesh, events, tasks))
    }

    /// Checks every setting before anything is bound, and derives what the start needs.
    fn check(&mut self) -> Result<Checked, Error> {
        let mut config = self.config.clone();
        if let Some(label) = self.label.take() {
            config.label = label;
        }
        config.validate()?;
        if self.event_capacity == 0 {
            return Err(config_error("event_capacity", "must be at least 1"));
        }
        let stream_timeout = self
            .stream_timeout
            .unwrap_or(config.probe_timeout.saturating_mul(10));
        if stream_timeout.is_zero() {
            return Err(config_error("stream_timeout", "must be greater than zero"));
        }
        if let Some(a) = self.advertise
            && (a.ip().is_unspecified() || a.port() == 0)
        {
            let reason = format!("{a} is not reachable: give a concrete IP and a non-zero port");
            return Err(config_error("advertise", reason));
        }
        crate::ring::RingConfig {
            vnodes_per_member: self.placement.vnodes_per_member,
        }
        .validate()
        .map_err(|e| config_error("placement.vnodes_per_member", e.to_string()))?;
        let keyring = Keyring::new(std::mem::take(&mut self.keys))?;
        let core = core_config(&config, &keyring)?;
        check_plaintext(self.allow_plaintext, &keyring, self.bind)?;
        let join_wait = self
            .join_wait
            .unwrap_or_else(|| default_join_wait(&config, stream_timeout));
        let forward = Forwarding::new(self.forward_config(&config, stream_timeout)?);
        self.check_messages(&config)?;
        let name = self.name.take().unwrap_or_else(default_name);
        let messages = Messaging::new(self.message_config(&core, &name, stream_timeout));
        Ok(Checked {
            config,
            core,
            stream_timeout,
            join_wait,
            keyring,
            forward,
            name,
            messages,
        })
    }

    /// Checks the forwarding options against the stream limit they travel within.
    fn forward_config(&self, config: &Config, stream: Duration) -> Result<ForwardConfig, Error> {
        let timeout = self.forward_timeout.unwrap_or(stream);
        if timeout.is_zero() {
            return Err(config_error("forward_timeout", "must be greater than zero"));
        }
        if self.forward_hop_limit == 0 {
            return Err(config_error("forward_hop_limit", "must be at least 1"));
        }
        if self.forward_queue == 0 {
            return Err(config_error("forward_queue", "must be at least 1"));
        }
        let room = config.max_stream.saturating_sub(FORWARD_FRAMING);
        if self.forward_max_payload > room {
            let reason = format!("must be at most max_stream - {FORWARD_FRAMING} ({room})");
            return Err(config_error("forward_max_payload", reason));
        }
        Ok(ForwardConfig {
            timeout,
            retries: self.forward_retries,
            hop_limit: self.forward_hop_limit,
            max_payload: self.forward_max_payload,
            queue: self.forward_queue,
            max_frame: config.max_stream + SEAL_OVERHEAD,
        })
    }

    /// Checks the message options against the stream limit reliable messages travel within.
    fn check_messages(&self, config: &Config) -> Result<(), Error> {
        if self.message_queue == 0 {
            return Err(config_error("message_queue", "must be at least 1"));
        }
        if self.user_event_queue == 0 {
            return Err(config_error("user_event_queue", "must be at least 1"));
        }
        let room = config.max_stream.saturating_sub(FORWARD_FRAMING);
        if self.max_reliable_message > room {
            let reason = format!("must be at most max_stream - {FORWARD_FRAMING} ({room})");
            return Err(config_error("max_reliable_message", reason));
        }
        Ok(())
    }

    /// The message settings of a node named `name`, whose core packs datagrams into
    /// `core.max_datagram` (the room left once a seal is added).
    fn message_config(&self, core: &Config, name: &str, timeout: Duration) -> MessageConfig {
        MessageConfig {
            max_datagram: max_message_body(&core.label, name, core.max_datagram),
            max_reliable: self.max_reliable_message,
            queue: self.message_queue,
            timeout,
        }
    }

    /// The address peers reach this node at: the one given, else the bound one, else (bound
    /// to a wildcard) the source address the kernel would use towards the first seed.
    fn advertise_for(
        &self,
        bound: SocketAddr,
        seed: Option<SocketAddr>,
    ) -> Result<SocketAddr, Error> {
        match self.advertise {
            Some(a) => Ok(a),
            None if bound.ip().is_unspecified() => {
                let ip = net::route_source(bound, seed).map_err(|e| Error::Advertise {
                    reason: format!("bound to {bound} and {e}"),
                })?;
                Ok(SocketAddr::new(ip, bound.port()))
            }
            None => Ok(bound),
        }
    }

    /// Builds the core, spawns the run loop (and the seed retries, if there are seeds), and
    /// returns the handle with subscriptions made before the loop ran.
    fn launch(
        self,
        checked: Checked,
        bound: net::Bound,
        advertise: SocketAddr,
    ) -> Result<(Mesh, Events, TaskChanges), Error> {
        let Checked {
            config,
            core,
            stream_timeout,
            join_wait,
            keyring,
            forward,
            name,
            messages,
        } = checked;
        let span = tracing::info_span!("mesh", node = %name);
        let id = Identity {
            name,
            addr: advertise,
            run: clock::new_run(),
            meta: self.meta,
        };
        let mut swim = Swim::new(core, id, rand::random(), clock::now())?;
        let out = Outputs {
            events: tokio::sync::broadcast::channel(self.event_capacity).0,
            tasks: tokio::sync::broadcast::channel(self.event_capacity).0,
        };
        if let Some(k) = keyring.primary() {
            tracing::info!(parent: &span, primary = %k.id(), keys = keyring.ids().len(), "packets are sealed");
        }
        let inboxes = (messages, self.user_event_queue);
        let shared = Arc::new(Shared::new(&swim, &out, keyring, forward, inboxes));
        let events = Events::new(Some(out.events.clone()));
        let tasks = TaskChanges::new(Some(out.tasks.clone()));
        let mut placer = LocalTasks::new(&swim.local().name, swim.local().run, self.placement);
        placer.add(self.tasks, &mut swim);
        let gate = JoinGate::new(!self.seeds.is_empty(), clock::now(), join_wait);
        let placing = Placing::new(placer, gate, clock::now());
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let local = swim.local().clone();
        let bound_addr = bound.addr;
        let outbox = Outbox::new(local.name.clone(), &bound.udp);
        let task = {
            let _enter = span.enter();
            let mut driver = Driver::new(
                swim,
                bound,
                cmd_rx,
                Arc::clone(&shared),
                out,
                placing,
                stream_timeout,
            );
            tracing::info!(bind = %bound_addr, advertise = %advertise, run = local.run, "mesh started");
            if !self.seeds.is_empty() {
                let retry = driver::retry_seeds(
                    self.seeds,
                    cmd_tx.downgrade(),
                    Arc::clone(&shared),
                    SeedRetry::new(&config),
                );
                driver.tasks.spawn(retry.in_current_span());
            }
            tokio::spawn(driver.run().in_current_span())
        };
        let inner = Inner {
            forward: forward::Client::new(Arc::clone(&shared)),
            outbox,
            cmds: cmd_tx,
            shared,
            task: Mutex::new(Some(task)),
            name: local.name,
            local_addr: bound_addr,
            advertise,
            config,
        };
        let inner = Arc::new(inner);
        Ok((Mesh { inner }, events, tasks))
    }
}

/// What [`MeshBuilder::check`] derives once every setting checked out.
struct Checked {
    /// The configuration in force, label applied.
    config: Config,
    /// What the core gets: the same, less the encryption envelope's room in each datagram.
    core: Config,
    stream_timeout: Duration,
    /// How long claims wait for the join (see [`MeshBuilder::join_wait`]).
    join_wait: Duration,
    keyring: Keyring,
    forward: Forwarding,
    /// The node's name (given, or the default), which bounds its best-effort messages.
    name: String,
    messages: Messaging,
}

/// Room a forward frame needs besides its body: the key (at most 4 KiB), the envelope and
/// the request's fields, with margin.
const FORWARD_FRAMING: usize = 8 << 10;

/// How long a node started with seeds waits for its join before it claims tasks anyway: the
/// longest seed retry wait plus one stream timeout. The start's join exchange is bounded by
/// the stream timeout, and seed retries back off from one probe interval up to
/// [`SeedRetry::longest`], so within this wait a node whose seed comes up a little later
/// (nodes started together) still reaches it, while a node alone on purpose is not kept idle
/// for long.
pub fn default_join_wait(config: &Config, stream_timeout: Duration) -> Duration {
    SeedRetry::longest(config).saturating_add(stream_timeout)
}

fn config_error(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        field,
        reason: reason.into(),
    }
}

/// The core packs datagrams into what is left once the envelope is added.
fn core_config(config: &Config, keyring: &Keyring) -> Result<Config, Error> {
    let mut core = config.clone();
    if !keyring.is_empty() {
        let least = 512 + SEAL_OVERHEAD;
        if config.max_datagram < least {
            let reason = format!("must be at least {least} with encryption");
            return Err(config_error("max_datagram", reason));
        }
        core.max_datagram -= SEAL_OVERHEAD;
    }
    Ok(core)
}

impl Mesh {
    /// Joins the seeds at start, and says in the log whether anyone answered.
    async fn join_seeds(&self, seeds: &[String], addrs: Vec<SocketAddr>) -> Result<(), Error> {
        if seeds.is_empty() {
            return Ok(());
        }
        let answered = if addrs.is_empty() {
            0
        } else {
            self.join_addrs(addrs).await?
        };
        let span = tracing::info_span!("mesh", node = %self.inner.name);
        if answered == 0 {
            tracing::warn!(parent: &span, seeds = ?seeds,
                "no seed answered: starting alone, retrying the seeds in the background");
        } else {
            tracing::info!(parent: &span, answered, "joined through the seeds");
        }
        Ok(())
    }
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
    fn default_name_fits_and_is_suffixed() {
        let n = default_name();
        assert!(!n.is_empty() && n.len() <= MAX_NAME_LEN, "{n}");
        let (_, suffix) = n.rsplit_once('-').unwrap();
        assert_eq!(suffix.len(), 4);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
