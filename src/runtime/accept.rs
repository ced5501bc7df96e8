//! The TCP side of the gossip port: accepting connections, bounded in number, and serving
//! each one's single request through the run loop, or handing a forward connection to
//! [`forward`] and a watch connection to [`watch`]. Apart from the driver so the loop file holds the loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::driver::{Counters, Inbound, Shared};
use super::{forward, net, watch};
use crate::wire::codec::Transport;

/// Inbound TCP connections served at once; more are closed at once (bounded memory).
const MAX_INBOUND_STREAMS: usize = 64;

/// Accepts TCP connections and serves each in its own task. The connection tasks live in
/// this task's own set, so aborting it (when the loop ends) aborts them too.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    inbound: mpsc::Sender<Inbound>,
    shared: Arc<Shared>,
    max: usize,
    limit: Duration,
) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a TCP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            Counters::bump(&shared.counters.streams_refused);
            tracing::debug!(%peer, "too many inbound streams; connection closed");
            continue;
        };
        Counters::bump(&shared.counters.streams_accepted);
        let inbound = inbound.clone();
        let shared = Arc::clone(&shared);
        conns.spawn(
            async move {
                if let Err(e) = serve(stream, inbound, &shared, max, limit, permit).await {
                    Counters::bump(&shared.counters.stream_failures);
                    tracing::debug!(%peer, error = %e, "inbound stream failed");
                }
            }
            .in_current_span(),
        );
    }
}

/// Reads one request frame, hands it to the loop, writes back the reply if there is one. A
/// forwarded request instead turns the connection into a persistent forward connection,
/// served off the loop and outside the gossip connections' limit (`permit` is released).
async fn serve(
    mut stream: TcpStream,
    inbound: mpsc::Sender<Inbound>,
    shared: &Arc<Shared>,
    max: usize,
    limit: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "peer too slow");
    let request = tokio::time::timeout(limit, net::read_frame(&mut stream, max))
        .await
        .map_err(|_| timed_out())??;
    let Some(bytes) = request else {
        return Ok(());
    };
    let Some(u) = shared.open(Transport::Stream, &bytes) else {
        return Ok(()); // counted as a decrypt failure; the peer gets no answer
    };
    let (bytes, origin) = u.into_owned(&bytes);
    if crate::wire::codec::starts_forward_connection(&bytes) {
        drop(permit);
        return forward::serve(stream, (bytes, origin), Arc::clone(shared)).await;
    }
    if crate::wire::codec::is_watch(&bytes, &shared.label) {
        drop(permit);
        return watch::hold(stream, &shared.watchers).await;
    }
    let (tx, rx) = oneshot::channel();
    let request = Inbound::Request {
        bytes,
        origin,
        reply: tx,
    };
    if inbound.send(request).await.is_err() {
        return Ok(()); // the loop has stopped
    }
    if let Ok(Some(reply)) = rx.await {
        tokio::time::timeout(limit, net::write_frame(&mut stream, &reply))
            .await
            .map_err(|_| timed_out())??;
    }
    stream.shutdown().await
}
