//! Event subscriptions.

use thiserror::Error;
use tokio::sync::broadcast;

use crate::proto::Event;

/// Why [`Events::recv`] returned no event.
///
/// Deliberately exhaustive: a subscriber either lagged or reached the end.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// This subscriber fell behind and the oldest `n` events were dropped for it. The next
    /// `recv` returns the oldest event still held; other subscribers are not affected.
    #[error("subscriber lagged: {0} events were missed")]
    Lagged(u64),
    /// The mesh has shut down and every event sent has been received.
    #[error("the mesh has shut down")]
    Closed,
}

/// A subscription to membership events, from [`Mesh::events`](super::Mesh::events).
///
/// It receives every event the mesh emits after the subscription was made, in the order the
/// protocol core applied them: every subscriber sees the same sequence. A subscriber that does
/// not keep up is told how many events it lost ([`RecvError::Lagged`]) rather than slowing the
/// mesh down.
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> Events {
        Events { rx }
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// The next event if one is waiting: `Ok(None)` if none is, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Event>, RecvError> {
        use broadcast::error::TryRecvError;
        match self.rx.try_recv() {
            Ok(e) => Ok(Some(e)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
        }
    }
}
