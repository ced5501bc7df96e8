//! The owner's side: serving forward connections, and handing each request to the
//! application's handler if this node owns its key.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};

use super::{ForwardedRequest, FrameWriter, MAX_IN_FLIGHT, Replier, ReplyOut, bump};
use crate::runtime::driver::Shared;
use crate::runtime::net;
use crate::wire::codec::encode_forward;
use crate::wire::forward::{ForwardFrame, ForwardReply, ForwardRequest, Outcome};
use crate::wire::seal::Origin;

/// A forward connection with no request for this long is closed. Callers close theirs
/// sooner when idle (so a request never races this close); this only reaps the connections
/// of callers that vanished without closing.
const SERVER_IDLE: Duration = Duration::from_secs(120);

/// Serves a forward connection whose first request (opened) has been read already: reads
/// requests, dispatches each, and writes the replies in the order they are ready. Ends when
/// the caller closes, on a frame that does not open or decode, or when idle.
pub(crate) async fn serve(
    stream: TcpStream,
    first: (Bytes, Option<Origin>),
    shared: Arc<Shared>,
) -> io::Result<()> {
    let Ok(_conn) = Arc::clone(&shared.forward.conns).try_acquire_owned() else {
        bump(&shared.counters.streams_refused);
        tracing::debug!("too many forward connections; connection closed");
        return Ok(());
    };
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    let writer = FrameWriter::new(wr, Arc::clone(&shared));
    tokio::select! {
        r = read_requests(rd, first, &shared, tx) => r,
        w = write_replies(writer, rx) => w,
    }
}

async fn read_requests(
    rd: OwnedReadHalf,
    first: (Bytes, Option<Origin>),
    shared: &Shared,
    out: mpsc::Sender<ReplyOut>,
) -> io::Result<()> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut r = BufReader::new(rd);
    let mut next = Some(first);
    loop {
        // Never closed: waits while the connection has its fill of requests in flight.
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .map_err(|_| invalid("closed"))?;
        let (plain, origin) = match next.take() {
            Some(first) => first,
            None => {
                let read = net::read_frame(&mut r, shared.forward.config.max_frame);
                let Some(bytes) = tokio::time::timeout(SERVER_IDLE, read)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle"))?
                    .inspect_err(|_| bump(&shared.forward.counters.malformed))?
                else {
                    return Ok(());
                };
                let opened = shared.open(crate::wire::codec::Transport::Stream, &bytes);
                opened
                    .ok_or_else(|| invalid("a forward frame did not open"))?
                    .into_owned(&bytes)
            }
        };
        match shared.forward.accept(shared, &plain, origin) {
            Some(ForwardFrame::Request(req)) => {
                let id = req.id;
                let reply = Replier::Remote {
                    id,
                    out: out.clone(),
                    permit,
                };
                dispatch(shared, req, reply);
            }
            Some(ForwardFrame::Message(m)) => {
                let out = out.clone();
                let id = m.id;
                Replier::Remote { id, out, permit }.send(shared.messages.reliable(m));
            }
            Some(ForwardFrame::Reply(_)) => {
                bump(&shared.forward.counters.malformed);
                return Err(invalid("a reply where a request was expected"));
            }
            None => return Err(invalid("a forward frame was refused")),
        }
    }
}

async fn write_replies(mut w: FrameWriter, mut rx: mpsc::Receiver<ReplyOut>) -> io::Result<()> {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(reply) = next {
            let frame = ForwardFrame::Reply(ForwardReply {
                id: reply.id,
                outcome: reply.outcome,
            });
            w.put(encode_forward(&w.shared.label, &frame)).await?;
            next = rx.try_recv().ok();
        }
        w.flush().await?;
    }
    Ok(())
}

/// Why this node will not hand `req` to its handler, if it will not: too many hops, too
/// large, or a key it does not own in its view.
fn refusal(shared: &Shared, req: &ForwardRequest) -> Option<Outcome> {
    let config = &shared.forward.config;
    if req.hops >= config.hop_limit {
        return Some(Outcome::HopLimit {
            limit: config.hop_limit,
        });
    }
    if req.body.len() > config.max_payload {
        return Some(Outcome::TooLarge {
            len: req.body.len() as u64,
            limit: config.max_payload as u64,
        });
    }
    shared.read(|s| match s.ring.owner(&req.key) {
        Some(owner) if owner == s.local.name => None,
        owner => Some(Outcome::NotOwner {
            owner: owner.map(str::to_owned),
        }),
    })
}

/// Hands a request to this node's handler, or answers it with a refusal at once. Never
/// waits: a full handler queue is refused as busy.
pub(crate) fn dispatch(shared: &Shared, req: ForwardRequest, reply: Replier) {
    let counters = &shared.forward.counters;
    let refuse = |reply: Replier, outcome| {
        bump(&counters.refused);
        reply.send(outcome);
    };
    if let Some(outcome) = refusal(shared, &req) {
        return refuse(reply, outcome);
    }
    let Some(handler) = shared.forward.handler() else {
        return refuse(reply, Outcome::NoHandler);
    };
    let request = ForwardedRequest {
        key: req.key,
        body: req.body,
        hops: req.hops,
        limit: shared.forward.config.max_payload,
        reply: Some(reply),
    };
    match handler.try_send(request) {
        Ok(()) => bump(&counters.served),
        Err(TrySendError::Full(mut r)) => {
            bump(&counters.busy);
            bump(&counters.refused);
            r.answer(Outcome::Busy);
        }
        Err(TrySendError::Closed(mut r)) => {
            bump(&counters.refused);
            r.answer(Outcome::NoHandler);
        }
    }
}
