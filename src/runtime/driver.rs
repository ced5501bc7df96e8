//! The run loop: one task owns the [`Swim`] and feeds it sockets, commands and timers.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::clock::now;
use super::events::TaskChange;
use super::forward::Forwarding;
use super::join::{SeedAnswer, tally};
use super::messages::Messaging;
use super::net;
use super::placing::Placing;
use super::ratelimit::RateLimit;
use super::secure::{self, Sealer};
use super::user_events::UserEventInbox;
use super::{MeshStats, resolve};
use super::{accept, watch};
use crate::error::Error;
use crate::placement::{Balance, FencingToken};
use crate::proto::UserEventError;
use crate::proto::{Channel, Event, Member, SeedRetry, Stats, Swim, Transmit, seeds_needed};
use crate::ring::Ring;
use crate::wire::Reach;
use crate::wire::codec::{Transport, decode_tags, encode_tags};
use crate::wire::seal::{Keyring, Origin, SEAL_OVERHEAD};

/// Largest datagram a socket can deliver.
const RECV_BUFFER: usize = 65_536;
/// Stream payloads waiting for the loop.
const INBOUND_QUEUE: usize = 256;

/// Shortest interval between two warnings of one kind that may repeat on every packet.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// A function that edits the node's tags inside the loop.
pub(crate) type TagEdit = Box<dyn FnOnce(&mut BTreeMap<String, String>) + Send>;

/// What a [`Mesh`](super::Mesh) handle asks of the loop.
pub(crate) enum Command {
    Join {
        addrs: Vec<SocketAddr>,
        answered: oneshot::Sender<Result<usize, Error>>,
    },
    SetMeta {
        meta: Bytes,
        done: oneshot::Sender<Result<(), Error>>,
    },
    UpdateTags {
        edit: TagEdit,
        done: oneshot::Sender<Result<(), Error>>,
    },
    Leave {
        disseminated: oneshot::Sender<()>,
    },
    AddTasks {
        keys: Vec<String>,
        done: oneshot::Sender<()>,
    },
    RemoveTasks {
        keys: Vec<String>,
        done: oneshot::Sender<()>,
    },
    IsTask {
        key: String,
        answer: oneshot::Sender<bool>,
    },
    ForceLeave {
        name: String,
        prune: bool,
        done: oneshot::Sender<Result<Member, Error>>,
    },
    Broadcast {
        name: String,
        payload: Bytes,
        done: oneshot::Sender<Result<u64, UserEventError>>,
    },
    Shutdown,
}

/// A stream payload coming back from a TCP task.
pub(crate) enum Inbound {
    /// A peer's request; the loop answers with the reply to write back, if any.
    Request {
        bytes: Bytes,
        origin: Option<Origin>,
        reply: oneshot::Sender<Option<Bytes>>,
    },
    /// The reply to a request this node sent; `answered` learns whether the core took it.
    Reply {
        bytes: Bytes,
        origin: Option<Origin>,
        answered: Option<oneshot::Sender<SeedAnswer>>,
    },
    /// What a connect this node made said about `addr`'s host (crash evidence).
    Reach { addr: SocketAddr, reach: Reach },
}

/// Counters the runtime keeps besides the core's.
#[derive(Default)]
pub(crate) struct Counters {
    pub send_errors: AtomicU64,
    pub recv_errors: AtomicU64,
    pub icmp_unreachable: AtomicU64,
    pub watches_taken: AtomicU64,
    pub watch_ends: AtomicU64,
    pub stream_failures: AtomicU64,
    pub streams_accepted: AtomicU64,
    pub streams_refused: AtomicU64,
    pub decrypt_failures: AtomicU64,
    pub replays_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the handles read without waiting on the loop.
pub(crate) struct Snapshot {
    /// Every known member, this node included, in name order.
    pub members: Vec<Member>,
    pub local: Member,
    pub live: usize,
    pub stats: Stats,
    /// The ring tasks are placed on, and the tasks this node owns on it.
    pub ring: Arc<Ring>,
    pub owned: Vec<String>,
    /// The token this node holds its tasks by: its placement epoch and run.
    pub token: FencingToken,
    /// How the registered tasks are spread over the members.
    pub balance: Balance,
}

/// The loop's two broadcasts. The loop owns the only strong senders, so every
/// subscription closes when the loop ends.
pub(crate) struct Outputs {
    pub events: broadcast::Sender<Event>,
    pub tasks: broadcast::Sender<TaskChange>,
}

/// State shared by the loop and every handle.
pub(crate) struct Shared {
    pub snapshot: RwLock<Snapshot>,
    /// Handles subscribe through these weak senders (see [`Outputs`]).
    pub events: broadcast::WeakSender<Event>,
    pub tasks: broadcast::WeakSender<TaskChange>,
    pub counters: Counters,
    /// The keys, replaced whole on every change so readers hold a consistent ring.
    keys: RwLock<Arc<Keyring>>,
    /// The cluster label sealed packets are bound to.
    pub(crate) label: String,
    /// Forwarding's serving side: the handler, its counters and replay windows.
    pub(crate) forward: Forwarding,
    /// Messages' receiving side: the application's queue and the counters.
    pub(crate) messages: Messaging,
    /// The user events the core delivers, on their way to the application.
    pub(crate) user_events: UserEventInbox,
    /// Bounds the warnings about packets that do not open.
    decrypt_warnings: RateLimit,
    /// The slots of the watch connections this node serves ([`watch`]).
    pub(crate) watchers: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    pub(crate) fn new(
        swim: &Swim,
        out: &Outputs,
        keys: Keyring,
        forward: Forwarding,
        (messages, user_event_queue): (Messaging, usize),
    ) -> Shared {
        Shared {
            snapshot: RwLock::new(Snapshot {
                members: swim.members().cloned().collect(),
                local: swim.local().clone(),
                live: swim.live_count(),
                stats: swim.stats(),
                ring: Arc::default(),
                owned: Vec::new(),
                token: FencingToken {
                    epoch: swim.epoch(),
                    run: swim.local().run,
                },
                balance: Balance::default(),
            }),
            events: out.events.downgrade(),
            tasks: out.tasks.downgrade(),
            counters: Counters::default(),
            keys: RwLock::new(Arc::new(keys)),
            label: swim.config().label.clone(),
            forward,
            messages,
            user_events: UserEventInbox::new(user_event_queue, swim.max_user_event_len()),
            decrypt_warnings: RateLimit::new(WARN_EVERY),
            watchers: watch::slots(),
        }
    }

    /// The keyring in force now.
    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies `edit` to a copy of the keyring and installs the copy if the edit succeeded.
    pub(crate) fn edit_keys<E>(
        &self,
        edit: impl FnOnce(&mut Keyring) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut guard = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut ring = Keyring::clone(&guard);
        edit(&mut ring)?;
        *guard = Arc::new(ring);
        Ok(())
    }

    /// Opens bytes that arrived; a failure is counted and logged (with the key id only), and
    /// the packet is dropped.
    pub(crate) fn open<'a>(
        &self,
        transport: Transport,
        bytes: &'a [u8],
    ) -> Option<secure::Unsealed<'a>> {
        secure::open(&self.keyring(), &self.label, transport, bytes)
            .inspect_err(|e| {
                Counters::bump(&self.counters.decrypt_failures);
                if let Some(held) = self.decrypt_warnings.allow() {
                    tracing::warn!(?transport, error = %e, more_since_last = held,
                        "a packet did not open (a peer with another key or cluster label?)");
                }
            })
            .ok()
    }

    /// Reads the snapshot; a poisoned lock still holds a consistent snapshot (it is only
    /// ever replaced whole), so poisoning is ignored.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        let guard = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub(crate) fn stats(&self) -> MeshStats {
        let (c, f) = (&self.counters, &self.forward.counters);
        let [sent, received, dropped, malformed] = self.messages.counters.load();
        MeshStats {
            protocol: self.read(|s| s.stats.clone()),
            send_errors: c.send_errors.load(Ordering::Relaxed),
            recv_errors: c.recv_errors.load(Ordering::Relaxed),
            icmp_unreachable: c.icmp_unreachable.load(Ordering::Relaxed),
            watches_taken: c.watches_taken.load(Ordering::Relaxed),
            watch_ends: c.watch_ends.load(Ordering::Relaxed),
            stream_failures: c.stream_failures.load(Ordering::Relaxed),
            streams_accepted: c.streams_accepted.load(Ordering::Relaxed),
            streams_refused: c.streams_refused.load(Ordering::Relaxed),
            decrypt_failures: c.decrypt_failures.load(Ordering::Relaxed),
            replays_dropped: c.replays_dropped.load(Ordering::Relaxed),
            forwards_sent: f.sent.load(Ordering::Relaxed),
            forwards_served: f.served.load(Ordering::Relaxed),
            forwards_refused: f.refused.load(Ordering::Relaxed),
            forwards_busy: f.busy.load(Ordering::Relaxed),
            forwards_malformed: f.malformed.load(Ordering::Relaxed),
            forwards_failed: f.failed.load(Ordering::Relaxed),
            messages_sent: sent,
            messages_received: received,
            messages_dropped: dropped,
            messages_malformed: malformed,
            user_events_dropped: self.user_events.dropped(),
        }
    }
}

/// The loop's state. Everything it spawns lives in `tasks`, so dropping the driver (when
/// the loop ends) aborts every connection, exchange and retry still running.
pub(crate) struct Driver {
    swim: Swim,
    udp: Arc<UdpSocket>,
    cmds: mpsc::Receiver<Command>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    pub(crate) tasks: JoinSet<()>,
    shared: Arc<Shared>,
    out: Outputs,
    placing: Placing,
    leave_waiters: Vec<oneshot::Sender<()>>,
    stream_timeout: Duration,
    /// Whether the member list changed since the snapshot was last rebuilt.
    dirty: bool,
    /// When the snapshot is next rebuilt even if no event said so (the core forgets old dead
    /// members and bumps incarnations silently).
    next_refresh: Instant,
    sealer: Sealer,
}

impl Driver {
    pub(crate) fn new(
        swim: Swim,
        sockets: net::Bound,
        cmds: mpsc::Receiver<Command>,
        shared: Arc<Shared>,
        out: Outputs,
        placing: Placing,
        stream_timeout: Duration,
    ) -> Driver {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let mut tasks = JoinSet::new();
        let max = swim.config().max_stream + SEAL_OVERHEAD;
        tasks.spawn(
            watch::watch(
                Arc::clone(&shared),
                inbound_tx.clone(),
                swim.config().probe_interval,
                stream_timeout,
            )
            .in_current_span(),
        );
        tasks.spawn(
            accept::accept_loop(
                sockets.tcp,
                inbound_tx.clone(),
                Arc::clone(&shared),
                max,
                stream_timeout,
            )
            .in_current_span(),
        );
        Driver {
            next_refresh: now(),
            swim,
            udp: sockets.udp,
            cmds,
            inbound_tx,
            inbound_rx,
            tasks,
            shared,
            out,
            placing,
            leave_waiters: Vec::new(),
            stream_timeout,
            dirty: true,
            sealer: Sealer::new(),
        }
    }

    /// Runs until a shutdown command, or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        tracing::debug!("run loop started");
        let mut buf = vec![0u8; RECV_BUFFER];
        let sleep = tokio::time::sleep_until(self.swim.poll_timeout().into());
        tokio::pin!(sleep);
        loop {
            // The core guarantees its deadline is later than the last `handle_timeout`.
            let mut deadline = self.swim.poll_timeout();
            if let Some(due) = self.placing.deadline() {
                deadline = deadline.min(due);
            }
            sleep.as_mut().reset(deadline.into());
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.datagram(from, &buf[..n]),
                    // An ICMP error queued for a datagram this node sent, not a failed read.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => self.socket_errors(),
                    Err(e) => {
                        Counters::bump(&self.shared.counters.recv_errors);
                        tracing::debug!(error = %e, "UDP receive failed");
                    }
                },
                cmd = self.cmds.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.command(cmd),
                },
                Some(inbound) = self.inbound_rx.recv() => self.inbound(inbound),
                () = &mut sleep => {
                    let at = now();
                    self.place(at);
                    self.swim.handle_timeout(at);
                }
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "a runtime task panicked");
                    }
                }
            }
            self.drain(None);
        }
        // Waits for the aborted tasks to drop their sockets (the listener among them), so the
        // address can be bound again as soon as `shutdown` returns.
        self.tasks.shutdown().await;
        tracing::debug!("run loop stopped");
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { addrs, answered } => {
                if let Err(e) = self.swim.join(now(), &addrs) {
                    let _ = answered.send(Err(e.into()));
                    return;
                }
                // Every stream transmit the join produced goes to one of `addrs`; collect
                // whether each answers, and report the count when all have finished.
                let mut pending = Vec::new();
                self.drain(Some((&addrs, &mut pending)));
                self.tasks.spawn(async move {
                    let _ = answered.send(Ok(tally(pending).await));
                });
            }
            Command::SetMeta { meta, done } => {
                let _ = done.send(self.set_meta(meta));
            }
            Command::UpdateTags { edit, done } => {
                let r = match decode_tags(&self.swim.local().meta) {
                    Ok(mut tags) => {
                        edit(&mut tags);
                        self.set_meta(encode_tags(&tags))
                    }
                    Err(e) => Err(Error::NotTags(e)),
                };
                let _ = done.send(r);
            }
            Command::Leave { disseminated } => {
                self.swim.leave(now());
                self.dirty = true;
                self.placing.schedule(now());
                self.leave_waiters.push(disseminated);
            }
            Command::AddTasks { keys, done } => {
                self.placing
                    .add(keys, &mut self.swim, (&self.shared, &self.out.tasks));
                let _ = done.send(());
            }
            Command::RemoveTasks { keys, done } => {
                self.placing
                    .remove(&keys, &mut self.swim, (&self.shared, &self.out.tasks));
                let _ = done.send(());
            }
            Command::IsTask { key, answer } => {
                let _ = answer.send(self.placing.table().contains(key.as_str()));
            }
            Command::ForceLeave { name, prune, done } => {
                let r = self.swim.force_leave(now(), &name, prune);
                if r.is_ok() {
                    self.dirty = true;
                }
                let _ = done.send(r.map_err(Error::from));
            }
            Command::Broadcast {
                name,
                payload,
                done,
            } => {
                let _ = done.send(self.swim.broadcast(now(), &name, payload));
            }
            Command::Shutdown => {}
        }
    }

    fn set_meta(&mut self, meta: Bytes) -> Result<(), Error> {
        self.swim.set_meta(now(), meta)?;
        self.dirty = true;
        Ok(())
    }

    /// Opens a datagram, refuses a replay, takes a message, and hands the rest to the core.
    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let Some(u) = self.shared.open(Transport::Datagram, bytes) else {
            return;
        };
        if !self.admit(Transport::Datagram, u.origin) || self.shared.take_message(&u.packet) {
            return;
        }
        if let Err(e) = self.swim.handle_datagram(now(), from, &u.packet) {
            tracing::debug!(%from, error = %e, "datagram refused");
        }
    }

    /// Whether an opened packet is new; a replay is counted.
    fn admit(&mut self, transport: Transport, origin: Option<Origin>) -> bool {
        let new = self.sealer.admit(transport, origin);
        if !new {
            Counters::bump(&self.shared.counters.replays_dropped);
            tracing::debug!(?transport, "replayed packet dropped");
        }
        new
    }

    fn seal(&mut self, transport: Transport, payload: Bytes) -> Bytes {
        let ring = self.shared.keyring();
        self.sealer
            .seal(&ring, &self.shared.label, transport, payload)
    }

    fn inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Request {
                bytes,
                origin,
                reply,
            } => {
                if !self.admit(Transport::Stream, origin) {
                    return;
                }
                let r = self.swim.handle_stream(now(), &bytes);
                if let Err(e) = &r {
                    tracing::debug!(error = %e, "stream request refused");
                }
                let sealed = r.ok().flatten().map(|b| self.seal(Transport::Stream, b));
                let _ = reply.send(sealed);
            }
            Inbound::Reply {
                bytes,
                origin,
                answered,
            } => {
                if !self.admit(Transport::Stream, origin) {
                    return;
                }
                let r = self.swim.handle_stream(now(), &bytes);
                if let Err(e) = &r {
                    tracing::debug!(error = %e, "stream reply refused");
                }
                if let Some(tx) = answered {
                    let _ = tx.send(if r.is_ok() {
                        SeedAnswer::State
                    } else {
                        SeedAnswer::Unreadable
                    });
                }
            }
            Inbound::Reach { addr, reach } => self.swim.handle_reach(now(), addr, reach),
        }
    }

    /// The UDP socket reported an error: reads its error queue and tells the core which
    /// destinations refused datagrams (ICMP port unreachable; see [`icmp`](super::icmp)).
    #[cfg(target_os = "linux")]
    fn socket_errors(&mut self) {
        let at = now();
        for addr in super::icmp::drain(&*self.udp) {
            Counters::bump(&self.shared.counters.icmp_unreachable);
            self.swim.handle_reach(at, addr, Reach::Refused);
        }
    }

    /// Without an error queue, a socket error tells nothing more.
    #[cfg(not(target_os = "linux"))]
    fn socket_errors(&mut self) {}

    /// Sends what the core queued, publishes its events and refreshes the snapshot. With
    /// `join`, stream transmits to those addresses report whether they were answered.
    fn drain(
        &mut self,
        mut join: Option<(&[SocketAddr], &mut Vec<oneshot::Receiver<SeedAnswer>>)>,
    ) {
        while let Some(t) = self.swim.poll_transmit() {
            match t.channel {
                Channel::Datagram => self.send_datagram(t),
                Channel::Stream => {
                    let answered = match &mut join {
                        Some((addrs, pending)) if addrs.contains(&t.to) => {
                            let (tx, rx) = oneshot::channel();
                            pending.push(rx);
                            Some(tx)
                        }
                        _ => None,
                    };
                    self.spawn_exchange(t, answered);
                }
            }
        }
        while let Some(event) = self.swim.poll_event() {
            log_event(&event);
            self.dirty = true;
            self.placing.schedule(now());
            // No subscriber is not an error: events are dropped until someone listens.
            let _ = self.out.events.send(event);
        }
        while let Some(e) = self.swim.poll_user_event() {
            self.shared.user_events.deliver(e);
        }
        if self.placing.waiting() && self.joined() {
            // The first full state merged: place now rather than at the wait's end.
            self.placing.schedule(now());
        }
        if !self.leave_waiters.is_empty() && self.swim.leave_disseminated() {
            for w in self.leave_waiters.drain(..) {
                let _ = w.send(());
            }
        }
        self.publish();
    }

    /// Whether this node has merged a full state from a member: it has joined.
    fn joined(&self) -> bool {
        self.swim.stats().states_merged > 0
    }

    /// Runs placement if it is due (see [`Placing::tick`]).
    fn place(&mut self, at: Instant) {
        let joined = self.placing.waiting() && self.joined();
        let out = (&*self.shared, &self.out.tasks);
        self.placing.tick(at, joined, &mut self.swim, out);
    }

    fn publish(&mut self) {
        let at = now();
        let refresh = self.dirty || at >= self.next_refresh;
        let mut snap = self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner());
        snap.stats = self.swim.stats();
        snap.live = self.swim.live_count();
        snap.token.epoch = self.swim.epoch();
        if refresh {
            snap.members.clear();
            snap.members.extend(self.swim.members().cloned());
            snap.local = self.swim.local().clone();
            self.dirty = false;
            // A far-off refresh if the interval overflows: events still trigger rebuilds.
            let step = self.swim.config().probe_interval;
            self.next_refresh = at
                .checked_add(step)
                .unwrap_or(at + Duration::from_secs(3600));
        }
    }

    fn send_datagram(&mut self, t: Transmit) {
        let payload = self.seal(Transport::Datagram, t.payload);
        let mut sent = self.udp.try_send_to(&payload, t.to);
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            // The refusal is an earlier datagram's ICMP error, reported once on whichever
            // call comes next (this send, which it failed): read it, then send again.
            self.socket_errors();
            sent = self.udp.try_send_to(&payload, t.to);
        }
        match sent {
            Ok(_) => {}
            Err(e) => {
                // A full send buffer drops the datagram, as the network might: the protocol
                // tolerates loss.
                Counters::bump(&self.shared.counters.send_errors);
                tracing::debug!(to = %t.to, error = %e, "datagram not sent");
            }
        }
    }

    fn spawn_exchange(&mut self, t: Transmit, answered: Option<oneshot::Sender<SeedAnswer>>) {
        let inbound = self.inbound_tx.clone();
        let shared = Arc::clone(&self.shared);
        let max = self.swim.config().max_stream + SEAL_OVERHEAD;
        let limit = self.stream_timeout;
        let to = t.to;
        let payload = self.seal(Transport::Stream, t.payload);
        let task = async move {
            let tell = |answered: Option<oneshot::Sender<SeedAnswer>>, a| {
                if let Some(tx) = answered {
                    let _ = tx.send(a);
                }
            };
            // Best effort: a full queue drops the evidence, not the exchange.
            let reached = |reach| {
                if inbound
                    .try_send(Inbound::Reach { addr: to, reach })
                    .is_err()
                {
                    tracing::debug!(%to, ?reach, "connect outcome not reported: queue full");
                }
            };
            match net::exchange(to, &payload, max, limit, reached).await {
                Ok(Some(bytes)) => {
                    // A reply that does not open tells this node nothing.
                    let Some(u) = shared.open(Transport::Stream, &bytes) else {
                        return tell(answered, SeedAnswer::Unreadable);
                    };
                    let (bytes, origin) = u.into_owned(&bytes);
                    let reply = Inbound::Reply {
                        bytes,
                        origin,
                        answered,
                    };
                    let _ = inbound.send(reply).await;
                }
                // Closed without a reply: a push without pull needs none, but a join's
                // seed that sends no state could not open the request (another key?).
                Ok(None) => tell(answered, SeedAnswer::Unreadable),
                Err(e) => {
                    tell(answered, SeedAnswer::Unreachable);
                    Counters::bump(&shared.counters.stream_failures);
                    tracing::debug!(%to, error = %e, "stream exchange failed");
                }
            }
        };
        self.tasks.spawn(task.in_current_span());
    }
}

fn log_event(event: &Event) {
    match event {
        Event::NameConflict {
            name,
            existing,
            claimant,
        } => tracing::warn!(%name, %existing, %claimant, "name conflict: claim ignored"),
        e => {
            let Some(m) = e.member() else { return };
            match e {
                Event::Joined(_) | Event::Dead(_) | Event::Left(_) | Event::Restarted(_) => {
                    tracing::info!(member = %m.name, addr = %m.addr, run = m.run, "{}", e.kind());
                }
                _ => tracing::debug!(member = %m.name, incarnation = m.incarnation, "{}", e.kind()),
            }
        }
    }
}

/// Says which seeds do not resolve, at most once per [`WARN_EVERY`]: a seed whose name is
/// wrong is retried with the others, never dropped, and never floods the log.
fn report_unresolved(limit: &RateLimit, unresolved: &[Error]) {
    if unresolved.is_empty() {
        return;
    }
    if let Some(held) = limit.allow() {
        for e in unresolved {
            tracing::warn!(error = %e, reports_held = held, "a seed does not resolve; still retrying it");
        }
    }
}

/// Retries the seeds, re-resolving every time, as the core's [`SeedRetry`] policy says: with
/// its backoff, while [`seeds_needed`] holds. Holds only a weak sender, so it never keeps
/// the loop alive; the loop aborts it on exit.
pub(crate) async fn retry_seeds(
    seeds: Vec<String>,
    cmds: mpsc::WeakSender<Command>,
    shared: Arc<Shared>,
    mut policy: SeedRetry,
) {
    let unresolvable = RateLimit::new(WARN_EVERY);
    loop {
        tokio::time::sleep(policy.next_delay()).await;
        let (state, live) = shared.read(|s| (s.local.state, s.live));
        if !seeds_needed(state, live) {
            if state == crate::wire::State::Alive {
                tracing::info!("has a live peer; seed retries stop");
            }
            return;
        }
        let wait = policy.upcoming();
        tracing::info!(seeds = ?seeds, next_retry_in = ?wait, "retrying the seeds");
        let (addrs, unresolved) = resolve(&seeds).await;
        report_unresolved(&unresolvable, &unresolved);
        if addrs.is_empty() {
            continue;
        }
        let Some(tx) = cmds.upgrade() else { return };
        let (answered, rx) = oneshot::channel();
        if tx.send(Command::Join { addrs, answered }).await.is_err() {
            return;
        }
        drop(tx);
        match rx.await {
            Ok(Ok(n)) if n > 0 => tracing::info!(answered = n, "reached the seeds"),
            Ok(Ok(_)) => tracing::info!(retry_in = ?wait, "no seed answered"),
            Ok(Err(_)) | Err(_) => return,
        }
    }
}
