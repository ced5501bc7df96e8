//! Watch connections: each node holds one idle TCP connection to the next live member in name
//! order, so that member's crash is heard the moment its kernel closes the connection.
//!
//! Probing finds a crashed process only when some member next probes it, which in a small
//! idle mesh can take a few probe intervals (each member is probed by someone about once a
//! probe interval, at random). A process that exits has its sockets closed by its kernel,
//! which ends the connection at once (FIN, or RST from a host that rebooted). The watcher
//! then reports [`Reach::Refused`] about the member's address, which makes it the core's
//! next probe, started at once ([`Swim::handle_reach`](crate::proto::Swim::handle_reach)):
//! the refused ping and a relay's refused stream declare it dead on evidence within
//! milliseconds. The end of a connection alone kills nobody, and a stopped (SIGSTOP) process
//! keeps its connection open, so patience is unchanged.
//!
//! Idle connections cost no bytes. Every node watches one member and is watched by about one,
//! and a node serves at most [`MAX_WATCHERS`] watch connections. The watched side answers a
//! watch it takes with one byte ([`TAKEN`]); one it refuses (no slot) is closed without it,
//! and a watch is reported only once it was taken, so a refusal is not mistaken for a crash.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

use super::driver::{Counters, Inbound, Shared};
use super::net;
use super::secure::Sealer;
use crate::proto::Member;
use crate::wire::Reach;
use crate::wire::codec::{Transport, encode_watch};

/// Watch connections a node serves at once. Each member is watched by about one other (its
/// predecessor in name order), more while views differ.
pub(crate) const MAX_WATCHERS: usize = 8;

/// The byte a node answers a watch request with when it holds the connection.
const TAKEN: u8 = 1;

/// The slots of the watch connections this node serves.
pub(crate) fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_WATCHERS))
}

/// The member to watch in `members` (name order, this node included): the first live one
/// after `me`, wrapping around, other than `me`.
fn successor<'a>(members: &'a [Member], me: &str) -> Option<&'a Member> {
    let live = |m: &&Member| m.state.is_live() && m.name != me;
    let after = members.iter().filter(live).find(|m| m.name.as_str() > me);
    after.or_else(|| members.iter().find(live))
}

/// Keeps a watch connection to the successor of this node, re-chosen every `tick` (the probe
/// interval), and reports to the loop when a taken watch ends.
pub(crate) async fn watch(
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
    tick: Duration,
    connect_limit: Duration,
) {
    let report = |addr: SocketAddr| {
        if inbound
            .try_send(Inbound::Reach {
                addr,
                reach: Reach::Refused,
            })
            .is_err()
        {
            tracing::debug!(%addr, "watch connection's end not reported: queue full");
        }
    };
    let mut sealer = Sealer::new();
    let mut held: Option<(SocketAddr, TcpStream)> = None;
    let mut buf = [0u8; 64];
    loop {
        let target = shared.read(|s| successor(&s.members, &s.local.name).map(|m| m.addr));
        if held.as_ref().map(|(a, ..)| *a) != target {
            held = None;
            if let Some(addr) = target {
                let request = {
                    let plain = encode_watch(&shared.label);
                    sealer.seal(&shared.keyring(), &shared.label, Transport::Stream, plain)
                };
                match tokio::time::timeout(connect_limit, open(addr, &request)).await {
                    Ok(Ok(stream)) => {
                        Counters::bump(&shared.counters.watches_taken);
                        held = Some((addr, stream));
                    }
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => report(addr),
                    Ok(Err(e)) => tracing::debug!(%addr, error = %e, "watch connection failed"),
                    Err(_) => tracing::debug!(%addr, "watch connection timed out"),
                }
            }
        }
        let Some((addr, stream)) = held.as_mut() else {
            tokio::time::sleep(tick).await;
            continue;
        };
        let ended = tokio::select! {
            _ = tokio::time::sleep(tick) => None,
            // The watched side writes nothing more: any end, data included, closes the watch.
            r = stream.read(&mut buf) => Some((*addr, r)),
        };
        if let Some((addr, outcome)) = ended {
            held = None;
            Counters::bump(&shared.counters.watch_ends);
            tracing::debug!(%addr, ?outcome, "watched member closed its connection");
            report(addr);
        }
    }
}

/// Connects to `addr`, sends the watch request and waits for it to be taken.
async fn open(addr: SocketAddr, request: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    net::write_frame(&mut stream, request).await?;
    match stream.read_u8().await? {
        TAKEN => Ok(stream),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("watch answered with {other}"),
        )),
    }
}

/// Serves a watch connection whose request has been read: holds it, reading nothing, until
/// the watcher closes it or this node stops (the accept task's end drops it, and the
/// watcher hears the close). Over [`MAX_WATCHERS`], it is closed at once, untaken.
pub(crate) async fn hold(mut stream: TcpStream, slots: &Arc<Semaphore>) -> std::io::Result<()> {
    let Ok(_slot) = Arc::clone(slots).try_acquire_owned() else {
        tracing::debug!("too many watch connections; connection closed");
        return Ok(());
    };
    stream.write_u8(TAKEN).await?;
    let mut buf = [0u8; 64];
    // A watcher sends nothing after its request: data, like the end, closes the connection.
    stream.read(&mut buf).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_member as member;
    use crate::wire::State;

    #[test]
    fn the_successor_is_the_next_live_member_by_name_wrapping_around() {
        let ms = [
            member("a", State::Alive),
            member("b", State::Dead),
            member("c", State::Suspect),
            member("d", State::Left),
        ];
        let next = |me| successor(&ms, me).map(|m| m.name.clone());
        assert_eq!(next("a").as_deref(), Some("c"), "skips the dead");
        assert_eq!(next("c").as_deref(), Some("a"), "wraps, skipping the left");
        assert_eq!(next("bb").as_deref(), Some("c"));
        assert_eq!(successor(&ms[..1], "a"), None, "alone: nobody to watch");
    }
}
