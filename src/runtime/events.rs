//! Subscriptions: membership events and task changes, each a broadcast every subscriber sees
//! in the same order.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use thiserror::Error;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::placement::FencingToken;
use crate::proto::Event;

/// Why a subscription returned nothing.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// This subscriber fell behind and the oldest `n` items were dropped for it. The next
    /// `recv` returns the oldest item still held; other subscribers are not affected.
    #[error("subscriber lagged: {0} events were missed")]
    Lagged(u64),
    /// The mesh has shut down and everything sent has been received.
    #[error("the mesh has shut down")]
    Closed,
}

/// What the local node gained and lost in one placement change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChange {
    /// Tasks this node now owns and did not before: start them. Sorted.
    pub acquired: Vec<String>,
    /// Tasks this node owned and no longer does: stop them. Sorted.
    pub released: Vec<String>,
    /// The fencing token this node holds its tasks by from this change on, the acquired
    /// ones and those it kept. It rises later with the node's epoch: read
    /// [`Mesh::token`](super::Mesh::token) when writing.
    pub token: FencingToken,
    /// Checksum of the ring that decided it (see [`Mesh::ring_checksum`](super::Mesh::ring_checksum)).
    pub ring_checksum: u64,
}

/// A subscription made by [`Mesh::events`](super::Mesh::events) or
/// [`Mesh::task_changes`](super::Mesh::task_changes).
///
/// It receives everything sent after the subscription was made, in the order the run loop
/// produced it: every subscriber sees the same sequence. A subscriber that does not keep up
/// is told how many items it lost ([`RecvError::Lagged`]) rather than slowing the mesh down.
/// It is also a [`Stream`](futures_core::Stream) of the same results, which ends when the
/// mesh shuts down.
#[derive(Debug)]
pub struct Subscription<T> {
    rx: BroadcastStream<T>,
}

/// Membership events, in the order the protocol core applied them.
pub type Events = Subscription<Event>;
/// The local node's task changes, each after the membership events that caused it.
pub type TaskChanges = Subscription<TaskChange>;

impl<T: Clone + Send + 'static> Subscription<T> {
    /// Subscribes to `tx`, or, if the loop has ended, a subscription closed from the start.
    pub(crate) fn new(tx: Option<broadcast::Sender<T>>) -> Self {
        let rx = match tx {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        Subscription {
            rx: BroadcastStream::new(rx),
        }
    }

    /// Waits for the next item.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is waiting: `Ok(None)` if none is, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<T>, RecvError> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_recv(&mut cx) {
            Poll::Ready(r) => r.map(Some),
            Poll::Pending => Ok(None),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        Pin::new(&mut self.rx).poll_next(cx).map(|item| match item {
            Some(Ok(item)) => Ok(item),
            Some(Err(BroadcastStreamRecvError::Lagged(n))) => Err(RecvError::Lagged(n)),
            None => Err(RecvError::Closed),
        })
    }
}

impl<T: Clone + Send + 'static> futures_core::Stream for Subscription<T> {
    type Item = Result<T, RecvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_recv(cx).map(|r| match r {
            Err(RecvError::Closed) => None,
            other => Some(other),
        })
    }
}
