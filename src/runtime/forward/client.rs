//! The caller's side: routing a request to its owner, following refusals, and a pool of one
//! persistent, multiplexed connection per peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use super::server::dispatch;
use super::{ForwardError, FrameWriter, MAX_IN_FLIGHT, Replier, bump};
use crate::runtime::clock;
use crate::runtime::driver::Shared;
use crate::runtime::net;
use crate::wire::codec::encode_forward;
use crate::wire::forward::{ForwardFrame, ForwardRequest, MAX_FORWARD_KEY, Outcome};

/// A caller closes a connection that carried nothing for this long (with nothing in
/// flight, so no request races the close); the next request opens a new one.
const CLIENT_IDLE: Duration = Duration::from_secs(30);

/// The connection ended after the request was written: it may have been served.
struct Lost(String);

/// The answer awaited for one request on a connection.
type Pending = oneshot::Sender<Result<Outcome, Lost>>;

/// A request on its way to a connection's writer.
struct Out {
    id: u64,
    plain: Bytes,
    reply: Pending,
}

/// One persistent connection to a peer. Requests are queued to its writer task; replies come
/// back by id. When it ends, every written request still unanswered is told [`Lost`]; those
/// never written are dropped unanswered, which tells their callers nothing was sent.
struct Conn {
    tx: mpsc::Sender<Out>,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl Conn {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one attempt on one node gave.
enum Attempt {
    /// The node answered (a reply or a refusal).
    Answered(Outcome),
    /// Nothing was sent: the node is unknown, not live, or refused the connection.
    NotSent(String),
    /// The request may have been served, but no answer will come.
    Failed(ForwardError),
}

/// What an exchange on a peer's connection gave: what forwarded requests and reliable
/// messages both need to tell a safe retry from an open outcome.
pub(crate) enum Exchange {
    /// The peer answered.
    Answer(Outcome),
    /// Nothing was written: no connection could be made, or it closed first.
    NotSent(String),
    /// The connection broke after the frame was written: it may have been acted on.
    Lost(String),
    /// No answer before the deadline: it may have been acted on.
    Timeout,
}

struct Pool {
    conns: HashMap<SocketAddr, Arc<Conn>>,
    /// Every connection's task: aborted when the pool closes or is dropped.
    tasks: JoinSet<()>,
    closed: bool,
}

/// The forwarding client of one node: request ids and the connection pool.
pub(crate) struct Client {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    pool: Mutex<Pool>,
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>) -> Client {
        Client {
            shared,
            next_id: AtomicU64::new(1),
            pool: Mutex::new(Pool {
                conns: HashMap::new(),
                tasks: JoinSet::new(),
                closed: false,
            }),
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the mesh has shut down: nothing is sent any more.
    pub(crate) fn is_closed(&self) -> bool {
        self.pool().closed
    }

    /// Closes every connection (their tasks are aborted); later forwards fail with
    /// [`ForwardError::Shutdown`].
    pub(crate) fn close(&self) {
        let mut pool = self.pool();
        pool.closed = true;
        pool.conns.clear();
        pool.tasks.abort_all();
        // The handler's queue ends: it learns the mesh is gone.
        *self
            .shared
            .forward
            .handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Sends `body` to the owner of `key` and returns its reply (see docs/RUNTIME.md,
    /// *Forwarding*, for what is retried and what is not).
    pub(crate) async fn forward(&self, key: Bytes, body: Bytes) -> Result<Bytes, ForwardError> {
        let r = self.checked(key, body).await;
        if r.is_err() {
            bump(&self.shared.forward.counters.failed);
        }
        r
    }

    async fn checked(&self, key: Bytes, body: Bytes) -> Result<Bytes, ForwardError> {
        let config = &self.shared.forward.config;
        if key.len() > MAX_FORWARD_KEY {
            return Err(ForwardError::KeyTooLong {
                len: key.len(),
                limit: MAX_FORWARD_KEY,
            });
        }
        if body.len() > config.max_payload {
            return Err(ForwardError::TooLarge {
                len: body.len(),
                limit: config.max_payload,
            });
        }
        if self.is_closed() {
            return Err(ForwardError::Shutdown);
        }
        let deadline = Instant::from_std(clock::now()) + config.timeout;
        self.route(
            ForwardRequest {
                id: 0,
                hops: 0,
                key,
                body,
            },
            deadline,
        )
        .await
    }

    /// Tries the owner, follows a refusal's named owner (a hop), and on a node that cannot
    /// be reached or names no usable owner moves to the next untried owner in ring order (a
    /// retry, also a hop). Never sends again once a request may have been served.
    async fn route(
        &self,
        mut req: ForwardRequest,
        deadline: Instant,
    ) -> Result<Bytes, ForwardError> {
        let config = &self.shared.forward.config;
        let key = req.key.clone();
        let owners = |n: usize| {
            self.shared.read(|s| {
                s.ring
                    .owners(&key, n)
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        let mut target = owners(1).pop().ok_or(ForwardError::NoOwner)?;
        let (mut tried, mut unreachable) = (Vec::new(), Vec::new());
        let mut retries = config.retries;
        for hops in 0..config.hop_limit {
            req.hops = hops;
            let last = match self.attempt(&target, &req, deadline).await {
                Attempt::Answered(Outcome::Reply(body)) => return Ok(body),
                Attempt::Answered(Outcome::NotOwner { owner: Some(o) })
                    if !unreachable.contains(&o) =>
                {
                    tried.push(std::mem::replace(&mut target, o));
                    continue;
                }
                Attempt::Answered(Outcome::NotOwner { owner }) => ForwardError::NotOwner {
                    node: target.clone(),
                    owner,
                },
                Attempt::Answered(refusal) => return Err(ForwardError::refused(&target, refusal)),
                Attempt::NotSent(reason) => {
                    unreachable.push(target.clone());
                    ForwardError::Unreachable {
                        node: target.clone(),
                        reason,
                    }
                }
                Attempt::Failed(e) => return Err(e),
            };
            tried.push(target.clone());
            let next = owners(usize::from(config.hop_limit) + 1)
                .into_iter()
                .find(|n| !tried.contains(n));
            match next {
                Some(n) if retries > 0 => {
                    retries -= 1;
                    target = n;
                }
                _ => return Err(last),
            }
        }
        Err(ForwardError::HopLimit {
            limit: config.hop_limit,
        })
    }

    /// One attempt on `target`: this node's own handler, or the target's connection (opened
    /// again once if it had closed before the request was written).
    async fn attempt(&self, target: &str, req: &ForwardRequest, deadline: Instant) -> Attempt {
        let timeout = || ForwardError::Timeout {
            node: target.to_owned(),
            after: self.shared.forward.config.timeout,
        };
        let (local, addr) = self.shared.read(|s| {
            let addr = s
                .members
                .binary_search_by(|m| m.name.as_str().cmp(target))
                .ok()
                .map(|i| &s.members[i])
                .filter(|m| m.state.is_live())
                .map(|m| m.addr);
            (s.local.name == target, addr)
        });
        if local {
            let (tx, rx) = oneshot::channel();
            dispatch(&self.shared, req.clone(), Replier::Local(tx));
            return match timeout_at(deadline, rx).await {
                Ok(Ok(outcome)) => Attempt::Answered(outcome),
                Ok(Err(_)) => Attempt::Answered(Outcome::Dropped),
                Err(_) => Attempt::Failed(timeout()),
            };
        }
        let Some(addr) = addr else {
            return Attempt::NotSent("not a live member in this node's view".into());
        };
        let frame = |id| ForwardFrame::Request(ForwardRequest { id, ..req.clone() });
        let sent = &self.shared.forward.counters.sent;
        match self.exchange(addr, frame, sent, deadline).await {
            Exchange::Answer(outcome) => Attempt::Answered(outcome),
            Exchange::NotSent(reason) => Attempt::NotSent(reason),
            Exchange::Lost(reason) => {
                let node = target.to_owned();
                Attempt::Failed(ForwardError::Lost { node, reason })
            }
            Exchange::Timeout => Attempt::Failed(timeout()),
        }
    }

    /// Sends `frame(id)` (with an id of its own) on the pooled connection to `addr`, opened
    /// again once if it had closed before the frame was written, counts it in `sent` once
    /// queued for writing, and waits for the answer until `deadline`.
    pub(crate) async fn exchange(
        &self,
        addr: SocketAddr,
        frame: impl Fn(u64) -> ForwardFrame,
        sent: &AtomicU64,
        deadline: Instant,
    ) -> Exchange {
        for _ in 0..2 {
            let conn = match self.conn(addr, deadline).await {
                Ok(c) => c,
                Err(reason) => return Exchange::NotSent(reason),
            };
            match self.send(&conn, &frame, sent, deadline).await {
                Exchange::NotSent(_) => continue,
                answered => return answered,
            }
        }
        Exchange::NotSent("the connection closed twice before the frame was written".into())
    }

    async fn send(
        &self,
        conn: &Conn,
        frame: impl Fn(u64) -> ForwardFrame,
        sent: &AtomicU64,
        deadline: Instant,
    ) -> Exchange {
        let closed =
            || Exchange::NotSent("the connection closed before the frame was written".into());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let plain = encode_forward(&self.shared.label, &frame(id));
        let (reply, rx) = oneshot::channel();
        match timeout_at(deadline, conn.tx.send(Out { id, plain, reply })).await {
            Ok(Ok(())) => bump(sent),
            Ok(Err(_)) => return closed(),
            Err(_) => return Exchange::Timeout,
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(Ok(outcome))) => Exchange::Answer(outcome),
            Ok(Ok(Err(Lost(reason)))) => Exchange::Lost(reason),
            Ok(Err(_)) => closed(),
            Err(_) => {
                conn.pending().remove(&id);
                Exchange::Timeout
            }
        }
    }

    /// The open connection to `addr`, connecting if there is none. Racing callers may both
    /// connect; the first to finish is kept and the other's socket closed, so the pool holds
    /// at most one connection per peer.
    async fn conn(&self, addr: SocketAddr, deadline: Instant) -> Result<Arc<Conn>, String> {
        let open = |pool: &Pool| pool.conns.get(&addr).filter(|c| !c.tx.is_closed()).cloned();
        if let Some(c) = open(&self.pool()) {
            return Ok(c);
        }
        let stream = timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut pool = self.pool();
        if pool.closed {
            return Err("the mesh has shut down".into());
        }
        if let Some(c) = open(&pool) {
            return Ok(c);
        }
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let conn = Arc::new(Conn {
            tx,
            pending: Mutex::new(HashMap::new()),
        });
        pool.conns.retain(|_, c| !c.tx.is_closed());
        pool.conns.insert(addr, Arc::clone(&conn));
        while pool.tasks.try_join_next().is_some() {}
        let task = run(stream, Arc::clone(&conn), rx, Arc::clone(&self.shared));
        pool.tasks.spawn(task.in_current_span());
        Ok(conn)
    }
}

/// Runs one connection until either direction ends, then settles every request on it.
async fn run(stream: TcpStream, conn: Arc<Conn>, mut rx: mpsc::Receiver<Out>, shared: Arc<Shared>) {
    let (rd, wr) = stream.into_split();
    let writer = FrameWriter::new(wr, Arc::clone(&shared));
    let why = tokio::select! {
        r = read_replies(rd, &conn, &shared) => r,
        w = write_requests(writer, &mut rx, &conn) => w,
    };
    tracing::debug!(reason = %why, "forward connection closed");
    // Queued but never written: dropped, so their callers know nothing was sent.
    rx.close();
    while rx.try_recv().is_ok() {}
    for (_, tx) in conn.pending().drain() {
        let _ = tx.send(Err(Lost(why.clone())));
    }
}

async fn write_requests(mut w: FrameWriter, rx: &mut mpsc::Receiver<Out>, conn: &Conn) -> String {
    loop {
        let first = match tokio::time::timeout(CLIENT_IDLE, rx.recv()).await {
            Ok(Some(out)) => out,
            Ok(None) => return "the pool closed".into(),
            Err(_) if conn.pending().is_empty() => return "idle".into(),
            Err(_) => continue,
        };
        let mut next = Some(first);
        while let Some(out) = next {
            conn.pending().insert(out.id, out.reply);
            if let Err(e) = w.put(out.plain).await {
                return e.to_string();
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = w.flush().await {
            return e.to_string();
        }
    }
}

async fn read_replies(rd: OwnedReadHalf, conn: &Conn, shared: &Shared) -> String {
    let forward = &shared.forward;
    let mut r = BufReader::new(rd);
    loop {
        let bytes = match net::read_frame(&mut r, forward.config.max_frame).await {
            Ok(Some(b)) => b,
            Ok(None) => return "closed by the peer".into(),
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    bump(&forward.counters.malformed);
                }
                return e.to_string();
            }
        };
        match forward.open(shared, &bytes) {
            Some(ForwardFrame::Reply(reply)) => {
                if let Some(tx) = conn.pending().remove(&reply.id) {
                    let _ = tx.send(Ok(reply.outcome));
                }
            }
            Some(ForwardFrame::Request(_) | ForwardFrame::Message(_)) => {
                bump(&forward.counters.malformed);
                return "a request where a reply was expected".into();
            }
            None => return "a reply did not open or decode".into(),
        }
    }
}
